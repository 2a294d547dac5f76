// The fd tables of a dumped tree: open file descriptions, shared ones found with
// kcmp(KCMP_FILE), pipes with the bytes in their buffers (read with tee(2): not
// consumed), deleted files saved whole.
#pragma once
#include <sys/types.h>

#include <map>
#include <vector>

#include "ckpt/model.hpp"
#include "ckpt/proc_read.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt {

class FileTable {
 public:
  Result<FdEntry> add(pid_t pid, const proc::FdInfo& fd);
  const std::vector<OpenFile>& files() const { return files_; }
  const std::map<uint64_t, std::vector<uint8_t>>& data() const { return data_; }

 private:
  Result<void> classify(pid_t pid, const proc::FdInfo& fd, OpenFile& f);
  std::vector<int> host_mounts_ = proc::own_mount_ids();
  std::vector<OpenFile> files_;
  std::vector<std::pair<pid_t, int>> owners_;  // first (pid, fd) of each file, for kcmp
  std::map<uint64_t, uint64_t> pipe_data_;     // pipe inode -> data id
  std::map<uint64_t, std::vector<uint8_t>> data_;
};

}  // namespace envrun::ckpt
