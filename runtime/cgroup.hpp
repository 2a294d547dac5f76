// Cgroup management for one container on cgroup v1, v2, and the hybrid layout
// (v1 controllers under /sys/fs/cgroup/<ctrl> plus a cgroup2 mount at
// /sys/fs/cgroup/unified). crun refuses hybrid; we do not.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
  // Parse text in the format of /proc/self/mountinfo (detect() = this over the real file).
  static Result<CgroupMounts> parse_mountinfo(std::string_view text);
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

// Implementation details shared by runtime/cgroup*.cpp; other code uses CgroupManager.
namespace cgroup_detail {

// The v1 manager (layouts V1 and Hybrid; in Hybrid it owns a v2 companion for the unified dir).
std::unique_ptr<CgroupManager> make_v1(const CgroupMounts& mounts, const std::string& path);
// The v2 manager. companion = the unified half of a hybrid manager: it creates, joins, freezes
// and removes its directory but applies only what v1 cannot (unified map; hugetlb and devices
// when there is no v1 hierarchy for them).
std::unique_ptr<CgroupManager> make_v2(const CgroupMounts& mounts, const std::string& path,
                                       bool companion);

// Write one knob. A missing file -> Config "<field>: <file>: not supported on this host";
// EINVAL/ERANGE -> Config naming field, file and value; a missing cgroup dir and other failures
// -> System. sys_errno is always kept (callers retry on EINVAL).
Result<void> write_knob(const std::string& dir, const std::string& file, std::string_view value,
                        const std::string& field);
// Knob content without the trailing newline.
Result<std::string> read_knob(const std::string& dir, const std::string& file);
// A number knob; "max" reads as UINT64_MAX; missing/unparsable -> nullopt.
std::optional<uint64_t> read_u64(const std::string& dir, const std::string& file);
// "key value" lines (memory.stat, cpu.stat, cgroup.events); unparsable values skipped.
std::map<std::string, uint64_t> read_keyed(const std::string& dir, const std::string& file);
// mkdir each level of `path` under `root`; returns the directories newly created, top-down.
// A path naming the hierarchy root itself ("", "/", "/a/..") is a Config error.
// before_level(parent_dir) runs before each level is made (v2: enable controllers).
Result<std::vector<std::string>> make_levels(const std::string& root, const std::string& path,
                                             const std::function<void(const std::string&)>& before_level = {});
// Remove `dir` and leftover child cgroups deepest-first, retrying EBUSY for ~2 s. ENOENT is ok.
// Refuses a hierarchy root.
Result<void> remove_cgroup(const std::string& dir);
// rmdir the given parent levels deepest-first; a level still in use (EBUSY/ENOTEMPTY) is kept.
Result<void> remove_created_parents(const std::vector<std::string>& created, const std::string& leaf);
// cgroup.procs of dir and all its descendants (a missing dir gives none).
Result<std::vector<pid_t>> collect_pids(const std::string& dir);
// Poll `done` every few ms until true or timeout_ms elapses.
bool wait_until(int timeout_ms, const std::function<bool()>& done);
// "MAJ:MIN".
std::string dev_key(int64_t major, int64_t minor);

}  // namespace cgroup_detail

}  // namespace envrun::runtime
