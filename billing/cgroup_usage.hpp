// The cgroup half of metering: the accounting files of one instance's cgroup, opened once
// and read with pread(2) at offset 0 on every sample (no open/close per sample).
//
// Which file gives what (one source per quantity, chosen when the reader is opened):
//   CPU     v1 cpuacct.usage_user / cpuacct.usage_sys (ns); without them cpuacct.stat (USER_HZ);
//           no cpuacct directory (v2, or hybrid without it): cpu.stat user_usec / system_usec
//           of the unified directory (present in every cgroup2 directory, controller or not).
//   memory  v1 memory.usage_in_bytes / memory.max_usage_in_bytes; v2 memory.current /
//           memory.peak (memory.peak is absent before Linux 5.19: no high-water mark then).
//   tasks   pids.current / pids.peak (v1 or v2). The pids controller counts tasks, that is
//           threads, not processes: these feed ThreadsPeak, not ProcessesPeak.
//   procs   cgroup.procs of the tracking directory (unified in hybrid and v2, where the
//           runtime puts every process; v1: pids, else memory, else cpuacct). Only the
//           instance's own directory: processes in nested child cgroups are not listed
//           (the cgroup totals above are hierarchical and do include them).
// CPU and the memory high-water mark include processes that already exited.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::billing {

// Where the hierarchies are mounted: the facts of runtime::CgroupMounts (billing does not
// link the runtime; the caller copies mounts.v1 and mounts.unified).
struct CgroupHierarchies {
  std::map<std::string, std::string> v1;  // controller -> mount dir ("memory" -> /sys/fs/cgroup/memory)
  std::string unified;                    // cgroup2 mount dir, "" when none
};

// A kernel text file (cgroupfs, procfs) held open and re-read from offset 0.
class KernelFile {
 public:
  KernelFile() = default;
  // ENOENT -> NotFound (naming the path); other failures -> System.
  static Result<KernelFile> open(std::string path, int flags = 0);
  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // The whole content, read into `buf` (grown while a read fills it). A file of a removed
  // cgroup or an exited process (ENODEV, ENOENT, ESRCH) -> NotFound.
  Result<std::string_view> read(std::string& buf) const;

 private:
  UniqueFd fd_;
  std::string path_;
};

// A decimal number, surrounding blanks and a trailing newline allowed.
std::optional<uint64_t> parse_u64(std::string_view s);
// The number after `key` on the line that starts with it ("user_usec 12", "Threads:\t3",
// "rchar: 99"): key, then blanks, then digits. nullopt when no line has it.
std::optional<uint64_t> keyed_u64(std::string_view text, std::string_view key);

// One reading of the cgroup's accounting; a field is empty when this cgroup has no such file.
struct CgroupCounters {
  std::optional<uint64_t> cpu_user_ns, cpu_system_ns;
  std::optional<uint64_t> memory_bytes, memory_peak_bytes;
  std::optional<uint64_t> tasks, tasks_peak;
};

class CgroupUsageReader {
 public:
  // `path` is the instance's cgroup path, absolute within each hierarchy ("/envrun/web1").
  // The directory missing from every hierarchy -> NotFound.
  static Result<CgroupUsageReader> open(const CgroupHierarchies& h, const std::string& path);

  // One pread per file held open. The cgroup removed meanwhile -> NotFound.
  Result<CgroupCounters> read();
  // The processes of the tracking directory (one pread of cgroup.procs) into `out`.
  Result<void> read_pids(std::vector<pid_t>& out);
  bool lists_processes() const { return procs_.valid(); }

  // The files held open, for debugging and tests ("/sys/fs/cgroup/memory/x/memory.usage_in_bytes").
  std::vector<std::string> files() const;

 private:
  enum class CpuSource { None, V1Ns, V1Ticks, V2Stat };
  Result<void> read_cpu(CgroupCounters& out);
  Result<std::optional<uint64_t>> read_number(const KernelFile& f);

  std::string path_;
  CpuSource cpu_source_ = CpuSource::None;
  KernelFile cpu_user_, cpu_sys_, cpu_stat_, cpu_total_;
  KernelFile mem_, mem_peak_, tasks_, tasks_peak_, procs_;
  uint64_t ns_per_tick_ = 10'000'000;
  std::string buf_;
};

}  // namespace envrun::billing
