// Memory contents of a stopped process into Pages / SharedMem sections: pages chosen
// with /proc/PID/pagemap (present or swapped; of private file mappings only the
// modified ones), read with process_vm_readv, zero pages dropped.
#pragma once
#include <sys/types.h>

#include <set>
#include <vector>

#include "ckpt/dump.hpp"
#include "ckpt/model.hpp"

namespace envrun::ckpt {

struct MemDumper {
  ImageWriter& out;
  DumpStats& stats;
  std::set<uint64_t> shared_done;  // shared anonymous memory is dumped once (by inode)
  std::vector<uint8_t> buf = std::vector<uint8_t>(16u << 20);

  Result<void> dump_process(pid_t host_pid, uint64_t image_pid, const std::vector<Vma>& vmas);

 private:
  Result<void> dump_run(pid_t host_pid, SectionType type, uint64_t id, uint64_t start, uint64_t pages);
};

}  // namespace envrun::ckpt
