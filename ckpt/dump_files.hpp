// The fd tables of a dumped tree: open file descriptions, shared ones found with
// kcmp(KCMP_FILE), pipes with the bytes in their buffers (read with tee(2): not
// consumed), deleted files saved whole.
#pragma once
#include <sys/types.h>

#include <map>
#include <vector>

#include "ckpt/model.hpp"
#include "ckpt/proc_read.hpp"
#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt {

class FileTable {
 public:
  explicit FileTable(bool tcp_established = false) : tcp_established_(tcp_established) {}
  // Established TCP connections back to normal (the tree keeps running). Otherwise they
  // stay in repair mode until the table is gone: closed silently after the tree is killed.
  void end_repair();
  // pid: host pid; ns_pid: the same process in the dumped pid namespace.
  Result<FdEntry> add(pid_t pid, pid_t ns_pid, const proc::FdInfo& fd);
  // After every process: unix sockets whose peer is not in the tree are refused.
  Result<void> check_peers() const;
  const std::vector<OpenFile>& files() const { return files_; }
  const std::map<uint64_t, std::vector<uint8_t>>& data() const { return data_; }

 private:
  Result<void> classify(pid_t pid, pid_t ns_pid, const proc::FdInfo& fd, OpenFile& f);
  uint64_t add_data(std::vector<uint8_t> bytes);
  std::vector<int> host_mounts_ = proc::own_mount_ids();
  std::vector<OpenFile> files_;
  std::vector<std::pair<pid_t, int>> owners_;  // first (pid, fd) of each file, for kcmp
  std::map<uint64_t, uint64_t> pipe_data_;     // pipe inode -> data id
  std::map<uint64_t, std::vector<uint8_t>> data_;
  bool tcp_established_ = false;
  std::vector<UniqueFd> repair_;  // duplicates of the connections in repair mode
};

}  // namespace envrun::ckpt
