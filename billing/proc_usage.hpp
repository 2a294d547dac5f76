// The per-process half of metering: for the processes the cgroup lists, how many fds they
// hold open, and on request their threads and their read/write byte counts.
//
// Per process the reader keeps fds across samples (an O_DIRECTORY fd of /proc/PID/fd, and
// when asked /proc/PID/status and /proc/PID/io), so a sample of a long-lived process costs
// an fstat and a pread or two, no open. A kept fd names its process, not its pid: once the
// process is gone its reads fail, the entry is dropped, and a new process that reuses the
// pid is opened afresh.
//   open fds  st_size of /proc/PID/fd (Linux >= 6.2 reports the count there); when it says 0,
//             the entries are counted (getdents64).
//   threads   "Threads:" of /proc/PID/status (only asked when the cgroup has no pids.current).
//   io bytes  rchar / wchar of /proc/PID/io: every byte through read/write-family calls
//             (files, sockets, pipes). Only the fallback for instances without a control
//             page, and an approximation: a process is seen at its samples, so what it did
//             between its last sample and its exit escapes, and so does all of a process that
//             lived between two samples. The totals are kept monotonic over the reader's
//             life: an exited process keeps the bytes it had at its last sample; a new reader
//             (a restarted collector) starts again from the processes alive then.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "billing/cgroup_usage.hpp"

namespace envrun::billing {

struct ProcessTotals {
  uint64_t processes = 0;              // listed processes whose /proc entry could be read
  uint64_t open_fds = 0;               // summed over them
  std::optional<uint64_t> threads;     // when asked: sum of their thread counts
  std::optional<uint64_t> read_bytes;  // when asked: cumulative rchar (see above)
  std::optional<uint64_t> written_bytes;
};

class ProcessUsage {
 public:
  struct Want {
    bool threads = false;
    bool io = false;
  };
  // One pass over `pids` (as cgroup.procs lists them). Processes that vanish meanwhile are
  // skipped; entries of pids no longer listed are dropped (their io bytes kept).
  ProcessTotals sample(const std::vector<pid_t>& pids, Want want);
  size_t tracked() const { return live_.size(); }

  std::string proc_root = "/proc";  // the procfs mount

 private:
  struct Entry {
    KernelFile fd_dir, status, io;
    uint64_t rchar = 0, wchar = 0;  // at the last successful read
    uint64_t generation = 0;        // the last sample that listed the pid
  };
  // Read one process into `t`; false when it is gone (the entry must be dropped).
  bool read_entry(pid_t pid, Entry& e, Want want, ProcessTotals& t);
  void retire(Entry& e);

  std::unordered_map<pid_t, Entry> live_;
  uint64_t generation_ = 0;
  uint64_t gone_rchar_ = 0, gone_wchar_ = 0;  // bytes of processes no longer tracked
  std::string buf_;
};

}  // namespace envrun::billing
