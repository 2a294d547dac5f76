// Cgroup management for one container on cgroup v1, v2, and the hybrid layout
// (v1 controllers under /sys/fs/cgroup/<ctrl> plus a cgroup2 mount at
// /sys/fs/cgroup/unified). crun refuses hybrid; we do not.
#pragma once
#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/spec.hpp"
#include "kernel/result.hpp"

namespace envrun::runtime {

enum class CgroupLayout { V1, Hybrid, V2 };

// Where the hierarchies are mounted. detect() reads /proc/self/mountinfo;
// tests build one by hand over a temporary directory.
struct CgroupMounts {
  CgroupLayout layout = CgroupLayout::V2;
  std::map<std::string, std::string> v1;  // controller name -> mount dir ("memory" -> /sys/fs/cgroup/memory); co-mounted "cpu,cpuacct" appear under each name
  std::string unified;                    // cgroup2 mount dir ("" when none)
  static Result<CgroupMounts> detect();
};

class CgroupManager {
 public:
  virtual ~CgroupManager() = default;

  // `path` is the container's cgroup path, absolute ("/envrun/web1"), relative to each
  // hierarchy's root. Relative cgroupsPath values are resolved by the caller.
  static std::unique_ptr<CgroupManager> make(const CgroupMounts& mounts, const std::string& path);

  virtual const std::string& path() const = 0;
  // mkdir -p in every hierarchy used (cpuset v1: copy cpus/mems from the parent).
  virtual Result<void> create() = 0;
  // Write the limits. Unsupported knobs on this host -> clear Config error naming the field.
  virtual Result<void> apply(const oci::Resources& r) = 0;
  virtual Result<void> add_process(pid_t pid) = 0;
  virtual Result<std::vector<pid_t>> pids() const = 0;  // all processes in the container's cgroup (recursive)
  virtual Result<void> freeze() = 0;  // waits until FROZEN
  virtual Result<void> thaw() = 0;
  virtual Result<bool> is_frozen() const = 0;
  // runc `events --stats` "data" object: cpu, memory, pids, blkio (fields as runc's types.Stats JSON).
  virtual Result<nlohmann::json> stats() const = 0;
  // Remove every directory created by create(); retries briefly while processes exit. Idempotent.
  virtual Result<void> destroy() = 0;
  // The directories used (for state.json and debugging).
  virtual std::vector<std::string> dirs() const = 0;
};

}  // namespace envrun::runtime
