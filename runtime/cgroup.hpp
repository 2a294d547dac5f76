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
  //
  // Which hierarchies a V1/Hybrid manager uses (every cgroup mkdir, rmdir and process move
  // costs, so a container joins only what it needs; a V2 manager always has one directory):
  // - always: memory, pids, cpuacct (accounting), plus the unified hierarchy in Hybrid (process
  //   tracking, cgroup.events, freeze) or the freezer in pure V1;
  // - when a resource sets one of their knobs: cpu (shares, quota, period, burst, realtime*,
  //   idle), cpuset (cpus, mems), blkio (blockIO), devices (device rules), hugetlb
  //   (hugepageLimits);
  // - never: the v1 freezer in Hybrid (cgroup.freeze of the unified directory is used),
  //   net_cls, net_prio, named hierarchies (name=systemd) and any other v1 controller.
  //
  // make(mounts, path, planned): for a container about to be created; `planned` is what
  // apply() will be given (nullptr: no resources), and create() joins only what it needs.
  // make(mounts, path): for an existing container (delete, pause, update, events, ps, exec):
  // the manager uses the hierarchies where the container's directory exists (a few stat()s).
  // When it exists in none, it means "all hierarchies a resource could use" (the behaviour
  // before plans existed).
  //
  // apply() of a resource whose hierarchy the container has not joined (e.g. `update
  // --cpu-quota` on a container created without cpu limits) joins it: mkdir there, write the
  // knobs, then move every process of the container into it, round after round until a round
  // finds nobody left behind (a process that forked meanwhile is caught by the next round).
  // add_process() writes the tracking hierarchy first and looks again for joined hierarchies,
  // so a process added concurrently by another envrun is either seen by that loop or joins the
  // new directory itself. If writing the knobs fails, the new directory is removed again.
  static std::unique_ptr<CgroupManager> make(const CgroupMounts& mounts, const std::string& path);
  static std::unique_ptr<CgroupManager> make(const CgroupMounts& mounts, const std::string& path,
                                             const oci::Resources* planned);

  // Whether the container at `path` is frozen, from one or two file reads and no manager:
  // V2/Hybrid: "frozen 1" in the unified directory's cgroup.events (Hybrid also honours a v1
  // freezer.state FROZEN left by a container created before the unified freeze); V1:
  // freezer.state. The container's tracking directory missing -> System error with ENOENT.
  // make(mounts, path)->is_frozen() gives the same answer.
  static Result<bool> is_frozen_at(const CgroupMounts& mounts, const std::string& path);

  virtual const std::string& path() const = 0;
  // mkdir -p in every hierarchy used (cpuset v1: copy cpus/mems from the parent).
  virtual Result<void> create() = 0;
  // Write the limits. Unsupported knobs on this host -> clear Config error naming the field.
  virtual Result<void> apply(const oci::Resources& r) = 0;
  virtual Result<void> add_process(pid_t pid) = 0;
  // All processes in the container's cgroup, recursive (Hybrid: from the unified directory,
  // which holds every process; V1: the pids hierarchy).
  virtual Result<std::vector<pid_t>> pids() const = 0;
  // Waits until FROZEN. Hybrid and V2: the unified directory's cgroup.freeze; V1: the freezer.
  virtual Result<void> freeze() = 0;
  virtual Result<void> thaw() = 0;
  virtual Result<bool> is_frozen() const = 0;
  // runc `events --stats` "data" object: cpu, memory, pids, blkio (fields as runc's types.Stats JSON).
  virtual Result<nlohmann::json> stats() const = 0;
  // Remove the container's directory wherever it exists (the hierarchies used, and any a
  // resource could use where another envrun joined it), and the parent levels this manager's
  // create() made. An empty cgroup goes with one rmdir, no sleep; while processes are still
  // exiting it retries with short growing pauses for up to 2 s. Idempotent.
  virtual Result<void> destroy() = 0;
  // The directories used (for state.json and debugging).
  virtual std::vector<std::string> dirs() const = 0;
};

// Implementation details shared by runtime/cgroup*.cpp; other code uses CgroupManager.
namespace cgroup_detail {

// The v1 manager (layouts V1 and Hybrid; in Hybrid it owns a v2 companion for the unified dir).
// planned == nullptr and !have_plan: discover the hierarchies (see CgroupManager::make).
std::unique_ptr<CgroupManager> make_v1(const CgroupMounts& mounts, const std::string& path,
                                       bool have_plan, const oci::Resources* planned);
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
// The leaf is tried first: when its parent exists that is one mkdir (and one before_level).
// A path naming the hierarchy root itself ("", "/", "/a/..") is a Config error.
// before_level(parent_dir) runs before each level is made (v2: enable controllers).
Result<std::vector<std::string>> make_levels(const std::string& root, const std::string& path,
                                             const std::function<void(const std::string&)>& before_level = {});
// Remove `dir`: one rmdir when it is empty; otherwise its leftover child cgroups deepest-first
// and retries on EBUSY (processes exiting) with pauses from 50 us growing to 10 ms, for ~2 s.
// ENOENT is ok. Refuses a hierarchy root.
Result<void> remove_cgroup(const std::string& dir);
// rmdir the given parent levels deepest-first; a level still in use (EBUSY/ENOTEMPTY) is kept.
Result<void> remove_created_parents(const std::vector<std::string>& created, const std::string& leaf);
// cgroup.procs of dir and all its descendants (a missing dir gives none).
Result<std::vector<pid_t>> collect_pids(const std::string& dir);
// True when "frozen 1" is in dir/cgroup.events (a v2 directory).
bool v2_frozen(const std::string& dir);
// Move every process that members() lists into `dir` (cgroup.procs), round after round until a
// round has nothing left to move; pids that vanish are skipped. Used to join a hierarchy late.
Result<void> move_processes(const std::function<Result<std::vector<pid_t>>()>& members,
                            const std::string& dir);
// Poll `done` every few ms until true or timeout_ms elapses.
bool wait_until(int timeout_ms, const std::function<bool()>& done);
// "MAJ:MIN".
std::string dev_key(int64_t major, int64_t minor);

}  // namespace cgroup_detail

}  // namespace envrun::runtime
