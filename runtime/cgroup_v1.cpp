// CgroupV1Manager: one directory per mounted v1 hierarchy (co-mounted controllers share one),
// plus, on hybrid hosts, a v2 companion directory in the unified hierarchy.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <sstream>
#include <thread>

#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "runtime/cgroup.hpp"

namespace envrun::runtime::cgroup_detail {

namespace {

// Where each controller's directory is; "" when the controller is not mounted.
using DirOf = std::function<std::string(const std::string&)>;

Result<std::string> need(const DirOf& dir_of, const std::string& ctrl, const std::string& field) {
  std::string d = dir_of(ctrl);
  if (d.empty())
    return Error::make(ErrorKind::Config, field + ": the " + ctrl + " cgroup controller is not mounted on this host");
  return d;
}

// Write a then b; if that fails with EINVAL (a transient ordering conflict such as a limit
// above the current memory+swap limit), write b then a.
Result<void> write_pair(const std::function<Result<void>()>& a, const std::function<Result<void>()>& b) {
  auto r = a();
  if (r) r = b();
  if (r || r.error().sys_errno != EINVAL) return r;
  auto r2 = b();
  if (r2) r2 = a();
  return r2 ? ok() : r;
}

// ---- memory ----

Result<void> apply_memory(const std::string& dir, const oci::MemoryResources& m) {
  const std::string f = "linux.resources.memory.";
  bool have_memsw = fs::exists(fs::join(dir, "memory.memsw.limit_in_bytes"));
  std::optional<std::string> limit, swap;
  if (m.limit && *m.limit != 0) limit = std::to_string(*m.limit < 0 ? -1 : *m.limit);
  if (m.swap && *m.swap != 0) {
    if (have_memsw) swap = std::to_string(*m.swap < 0 ? -1 : *m.swap);
    else if (*m.swap != -1)
      return Error::make(ErrorKind::Config, f + "swap: swap accounting is not enabled on this host");
  } else if (limit && *limit == "-1" && have_memsw) {
    swap = "-1";  // unlimited memory: lift memory+swap too, or the limit write fails
  }
  auto write_limit = [&]() -> Result<void> {
    return limit ? write_knob(dir, "memory.limit_in_bytes", *limit, f + "limit") : ok();
  };
  auto write_swap = [&]() -> Result<void> {
    return swap ? write_knob(dir, "memory.memsw.limit_in_bytes", *swap, f + "swap") : ok();
  };
  ENVRUN_CHECK(write_pair(write_limit, write_swap));
  if (m.reservation && *m.reservation != 0)
    ENVRUN_CHECK(write_knob(dir, "memory.soft_limit_in_bytes", std::to_string(*m.reservation), f + "reservation"));
  if (m.swappiness)
    ENVRUN_CHECK(write_knob(dir, "memory.swappiness", std::to_string(*m.swappiness), f + "swappiness"));
  if (m.disable_oom_killer)
    ENVRUN_CHECK(write_knob(dir, "memory.oom_control", *m.disable_oom_killer ? "1" : "0", f + "disableOOMKiller"));
  if (m.kernel) log::warn(f + "kernel: deprecated, ignored");
  if (m.kernel_tcp) log::warn(f + "kernelTCP: deprecated, ignored");
  if (m.use_hierarchy) log::debug(f + "useHierarchy: always on in current kernels, ignored");
  return ok();
}

// ---- cpu, cpuset ----

// The first cpu-controller knob set ("shares", "quota", ...), or nullptr when none is.
const char* first_cpu_knob(const oci::CpuResources& c) {
  return (c.shares && *c.shares)                     ? "shares"
         : (c.quota && *c.quota)                       ? "quota"
         : (c.period && *c.period)                     ? "period"
         : c.burst                                     ? "burst"
         : (c.realtime_runtime && *c.realtime_runtime) ? "realtimeRuntime"
         : (c.realtime_period && *c.realtime_period)   ? "realtimePeriod"
         : c.idle                                      ? "idle"
                                                       : nullptr;
}

Result<void> apply_cpu(const DirOf& dir_of, const oci::CpuResources& c) {
  const std::string f = "linux.resources.cpu.";
  const char* first = first_cpu_knob(c);
  if (first) {
    auto dir = ENVRUN_TRY(need(dir_of, "cpu", f + first));
    auto knob = [&](const char* file, std::string v, const char* field) {
      return [=, &dir] { return write_knob(dir, file, v, f + field); };
    };
    if (c.shares && *c.shares) ENVRUN_CHECK(knob("cpu.shares", std::to_string(*c.shares), "shares")());
    auto nothing = [] { return ok(); };
    std::function<Result<void>()> period = nothing, quota = nothing;
    if (c.period && *c.period) period = knob("cpu.cfs_period_us", std::to_string(*c.period), "period");
    if (c.quota && *c.quota) quota = knob("cpu.cfs_quota_us", std::to_string(*c.quota < 0 ? -1 : *c.quota), "quota");
    ENVRUN_CHECK(write_pair(period, quota));
    if (c.burst) ENVRUN_CHECK(knob("cpu.cfs_burst_us", std::to_string(*c.burst), "burst")());
    std::function<Result<void>()> rt_period = nothing, rt_runtime = nothing;
    if (c.realtime_period && *c.realtime_period)
      rt_period = knob("cpu.rt_period_us", std::to_string(*c.realtime_period), "realtimePeriod");
    if (c.realtime_runtime && *c.realtime_runtime)
      rt_runtime = knob("cpu.rt_runtime_us", std::to_string(*c.realtime_runtime), "realtimeRuntime");
    ENVRUN_CHECK(write_pair(rt_period, rt_runtime));
    if (c.idle) ENVRUN_CHECK(knob("cpu.idle", std::to_string(*c.idle), "idle")());
  }
  if (!c.cpus.empty()) {
    auto dir = ENVRUN_TRY(need(dir_of, "cpuset", f + "cpus"));
    ENVRUN_CHECK(write_knob(dir, "cpuset.cpus", c.cpus, f + "cpus"));
  }
  if (!c.mems.empty()) {
    auto dir = ENVRUN_TRY(need(dir_of, "cpuset", f + "mems"));
    ENVRUN_CHECK(write_knob(dir, "cpuset.mems", c.mems, f + "mems"));
  }
  return ok();
}

// A new cpuset level starts with empty cpus/mems and accepts no task: copy the parent's.
Result<void> fill_cpuset(const std::string& mount, const std::string& leaf) {
  std::vector<std::string> chain;  // leaf up to (excluding) the mount root
  for (std::string d = leaf; d.size() > mount.size(); d = d.substr(0, d.rfind('/'))) chain.push_back(d);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    std::string parent = it->substr(0, it->rfind('/'));
    for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
      auto mine = read_knob(*it, file);
      if (mine && !mine->empty()) continue;
      auto theirs = read_knob(parent, file);
      if (!theirs) return std::move(theirs).error().with_context("cgroup: cpuset");
      ENVRUN_CHECK(write_knob(*it, file, *theirs, "cgroup: cpuset"));
    }
  }
  return ok();
}

// ---- blkio ----

bool has_blkio_knobs(const oci::BlockIoResources& b) {
  return (b.weight && *b.weight) || (b.leaf_weight && *b.leaf_weight) || !b.weight_device.empty() ||
         !b.throttle_read_bps_device.empty() || !b.throttle_write_bps_device.empty() ||
         !b.throttle_read_iops_device.empty() || !b.throttle_write_iops_device.empty();
}

Result<void> apply_blkio(const std::string& dir, const oci::BlockIoResources& b) {
  const std::string f = "linux.resources.blockIO.";
  // blkio.weight came with CFQ; with BFQ the knobs are blkio.bfq.*.
  auto pick = [&](const char* plain, const char* bfq) {
    return fs::exists(fs::join(dir, plain)) || !fs::exists(fs::join(dir, bfq)) ? plain : bfq;
  };
  if (b.weight && *b.weight)
    ENVRUN_CHECK(write_knob(dir, pick("blkio.weight", "blkio.bfq.weight"), std::to_string(*b.weight), f + "weight"));
  if (b.leaf_weight && *b.leaf_weight)
    ENVRUN_CHECK(write_knob(dir, "blkio.leaf_weight", std::to_string(*b.leaf_weight), f + "leafWeight"));
  for (size_t k = 0; k < b.weight_device.size(); ++k) {
    const auto& d = b.weight_device[k];
    std::string field = f + "weightDevice[" + std::to_string(k) + "]";
    if (d.weight)
      ENVRUN_CHECK(write_knob(dir, pick("blkio.weight_device", "blkio.bfq.weight_device"),
                              dev_key(d.major, d.minor) + " " + std::to_string(*d.weight), field));
    if (d.leaf_weight)
      ENVRUN_CHECK(write_knob(dir, "blkio.leaf_weight_device",
                              dev_key(d.major, d.minor) + " " + std::to_string(*d.leaf_weight), field));
  }
  struct Throttle {
    const std::vector<oci::BlockIoDevice>* list;
    const char *file, *field;
  } throttles[] = {{&b.throttle_read_bps_device, "blkio.throttle.read_bps_device", "throttleReadBpsDevice"},
                   {&b.throttle_write_bps_device, "blkio.throttle.write_bps_device", "throttleWriteBpsDevice"},
                   {&b.throttle_read_iops_device, "blkio.throttle.read_iops_device", "throttleReadIOPSDevice"},
                   {&b.throttle_write_iops_device, "blkio.throttle.write_iops_device", "throttleWriteIOPSDevice"}};
  for (const auto& t : throttles)
    for (size_t k = 0; k < t.list->size(); ++k) {
      const auto& d = (*t.list)[k];
      ENVRUN_CHECK(write_knob(dir, t.file, dev_key(d.major, d.minor) + " " + std::to_string(d.rate),
                              f + t.field + "[" + std::to_string(k) + "]"));
    }
  return ok();
}

// ---- devices ----

// Rules are written in order; a leading deny-all writes "a *:* rwm" to devices.deny first
// (the v1 controller starts as allow-all). Type "a" is all-or-nothing in the kernel, so a
// partial "a" rule is written as the same rule for "c" and "b".
Result<void> apply_devices(const std::string& dir, const std::vector<oci::DeviceCgroupRule>& rules) {
  for (size_t k = 0; k < rules.size(); ++k) {
    const auto& r = rules[k];
    std::string field = "linux.resources.devices[" + std::to_string(k) + "]";
    std::string type = r.type.empty() ? "a" : r.type;
    if (type != "a" && type != "c" && type != "b")
      return Error::make(ErrorKind::Config, field + ".type: invalid \"" + r.type + "\"");
    std::string access = r.access.empty() ? "rwm" : r.access;
    if (access.find_first_not_of("rwm") != std::string::npos)
      return Error::make(ErrorKind::Config, field + ".access: invalid \"" + r.access + "\"");
    std::string maj = r.major && *r.major >= 0 ? std::to_string(*r.major) : "*";
    std::string min = r.minor && *r.minor >= 0 ? std::to_string(*r.minor) : "*";
    bool everything = maj == "*" && min == "*" && access.size() == 3;
    const char* file = r.allow ? "devices.allow" : "devices.deny";
    std::vector<std::string> lines;
    if (type == "a" && !everything) lines = {"c " + maj + ":" + min + " " + access, "b " + maj + ":" + min + " " + access};
    else lines = {type + " " + maj + ":" + min + " " + access};
    for (const auto& line : lines) ENVRUN_CHECK(write_knob(dir, file, line, field));
  }
  return ok();
}

// ---- stats ----

nlohmann::json blkio_entries(const std::string& dir, const std::vector<std::string>& candidates) {
  nlohmann::json out = nlohmann::json::array();
  if (dir.empty()) return out;  // blkio not joined
  for (const auto& file : candidates) {
    auto text = fs::read_file(fs::join(dir, file));
    if (!text) continue;
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) {
      unsigned major = 0, minor = 0;
      char op[32];
      unsigned long long v = 0;
      if (std::sscanf(line.c_str(), "%u:%u %31s %llu", &major, &minor, op, &v) == 4)
        out.push_back({{"major", major}, {"minor", minor}, {"op", op}, {"value", v}});
    }
    break;
  }
  return out;
}

nlohmann::json memory_entry(const std::string& dir, const std::string& prefix) {
  return {{"usage", read_u64(dir, prefix + ".usage_in_bytes").value_or(0)},
          {"max", read_u64(dir, prefix + ".max_usage_in_bytes").value_or(0)},
          {"failcnt", read_u64(dir, prefix + ".failcnt").value_or(0)},
          {"limit", read_u64(dir, prefix + ".limit_in_bytes").value_or(0)}};
}

nlohmann::json cpu_stats(const std::string& cpu, const std::string& acct) {
  nlohmann::json percpu = nlohmann::json::array();
  if (auto text = read_knob(acct, "cpuacct.usage_percpu")) {
    std::istringstream in(*text);
    for (uint64_t v; in >> v;) percpu.push_back(v);
  }
  auto ticks = read_keyed(acct, "cpuacct.stat");  // USER_HZ ticks
  uint64_t hz = uint64_t(std::max(1L, ::sysconf(_SC_CLK_TCK)));
  auto thr = cpu.empty() ? std::map<std::string, uint64_t>{} : read_keyed(cpu, "cpu.stat");
  return {{"usage", {{"total", read_u64(acct, "cpuacct.usage").value_or(0)}, {"percpu", percpu},
                     {"kernel", ticks["system"] * (1000000000 / hz)}, {"user", ticks["user"] * (1000000000 / hz)}}},
          {"throttling", {{"periods", thr["nr_periods"]}, {"throttledPeriods", thr["nr_throttled"]},
                          {"throttledTime", thr["throttled_time"]}}}};
}

nlohmann::json stats_of(const DirOf& dir_of) {
  nlohmann::json j;
  j["cpu"] = cpu_stats(dir_of("cpu"), dir_of("cpuacct"));
  std::string mem = dir_of("memory");
  auto raw = read_keyed(mem, "memory.stat");
  j["memory"] = {{"usage", memory_entry(mem, "memory")}, {"swap", memory_entry(mem, "memory.memsw")},
                 {"kernel", memory_entry(mem, "memory.kmem")}, {"kernelTCP", memory_entry(mem, "memory.kmem.tcp")},
                 {"raw", raw}, {"cache", raw["cache"]}};
  std::string pids = dir_of("pids");
  uint64_t pmax = read_u64(pids, "pids.max").value_or(0);
  j["pids"] = {{"current", read_u64(pids, "pids.current").value_or(0)}, {"limit", pmax == UINT64_MAX ? 0 : pmax}};
  std::string blk = dir_of("blkio");
  j["blkio"] = {{"ioServiceBytesRecursive",
                 blkio_entries(blk, {"blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive",
                                     "blkio.throttle.io_service_bytes"})},
                {"ioServicedRecursive",
                 blkio_entries(blk, {"blkio.io_serviced_recursive", "blkio.throttle.io_serviced_recursive",
                                     "blkio.throttle.io_serviced"})}};
  return j;
}

// ---- which hierarchies ----

// Controllers a resource can use: the ones make(mounts, path) joins for a new container.
bool usable(const std::string& ctrl, CgroupLayout layout) {
  static const std::set<std::string> resource_controllers = {"memory", "pids",    "cpuacct", "cpu",
                                                             "cpuset", "blkio", "devices", "hugetlb"};
  return resource_controllers.count(ctrl) || (ctrl == "freezer" && layout == CgroupLayout::V1);
}

// Whether a container with resources `r` (nullptr: none) needs `ctrl`.
bool wanted(const std::string& ctrl, CgroupLayout layout, const oci::Resources* r) {
  if (ctrl == "memory" || ctrl == "pids" || ctrl == "cpuacct") return true;  // accounting
  if (ctrl == "freezer") return layout == CgroupLayout::V1;                  // Hybrid: cgroup.freeze
  if (!r) return false;
  if (ctrl == "cpu") return r->cpu && first_cpu_knob(*r->cpu);
  if (ctrl == "cpuset") return r->cpu && (!r->cpu->cpus.empty() || !r->cpu->mems.empty());
  if (ctrl == "blkio") return r->block_io && has_blkio_knobs(*r->block_io);
  if (ctrl == "devices") return !r->devices.empty();
  if (ctrl == "hugetlb") return !r->hugepage_limits.empty();
  return false;
}

// ---- the manager ----

class CgroupV1Manager final : public CgroupManager {
 public:
  CgroupV1Manager(const CgroupMounts& m, const std::string& path, bool have_plan, const oci::Resources* planned)
      : mounts_(m), path_(fs::normalize("/" + path)), discovering_(!have_plan) {
    for (const auto& [ctrl, mount] : m.v1) {
      auto it = std::find_if(hier_.begin(), hier_.end(), [&](const Hierarchy& h) { return h.mount == mount; });
      if (it == hier_.end()) it = hier_.insert(hier_.end(), Hierarchy{mount, fs::join(mount, path_), {}, {}});
      it->controllers.push_back(ctrl);
    }
    if (m.layout == CgroupLayout::Hybrid && !m.unified.empty()) unified_ = make_v2(m, path_, true);
    if (path_ == "/") return;  // every operation refuses a hierarchy root
    if (have_plan) {
      for (auto& h : hier_) h.used = any_of(h, [&](const std::string& c) { return wanted(c, m.layout, planned); });
      return;
    }
    bool found = false;  // an existing container: the hierarchies holding its directory
    for (auto& h : hier_) found |= (h.used = fs::is_dir(h.dir));
    if (!found)  // none yet: everything a resource could use
      for (auto& h : hier_) h.used = usable_hierarchy(h);
  }

  const std::string& path() const override { return path_; }

  std::vector<std::string> dirs() const override {
    std::vector<std::string> out;
    for (const auto& h : hier_)
      if (h.used) out.push_back(h.dir);
    if (unified_)
      for (auto& d : unified_->dirs()) out.push_back(d);
    return out;
  }

  Result<void> create() override {
    ENVRUN_CHECK(check_path());
    for (auto& h : hier_)
      if (h.used) ENVRUN_CHECK(make_dir(h));
    if (unified_) ENVRUN_CHECK(unified_->create());
    return ok();
  }

  Result<void> apply(const oci::Resources& r) override {
    if (!r.unified.empty() && !unified_)
      return Error::make(ErrorKind::Config, "linux.resources.unified: needs cgroup v2 (this host mounts cgroup v1 only)");
    ENVRUN_CHECK(check_path());
    std::vector<Hierarchy*> joined;  // hierarchies this apply joins late
    for (auto& h : hier_) {
      if (h.used || !any_of(h, [&](const std::string& c) { return wanted(c, mounts_.layout, &r); })) continue;
      if (std::string t = tracking_dir(); !t.empty() && !fs::is_dir(t))
        return Error{ENOENT, ErrorKind::System, "cgroup: " + t + " does not exist"};
      ENVRUN_CHECK(make_dir(h));
      h.used = true;
      joined.push_back(&h);
    }
    auto written = write_resources(r);
    for (auto* h : joined) {
      if (!written && ::rmdir(h->dir.c_str()) == 0) {  // nobody in it yet: as if never joined
        (void)remove_created_parents(h->created, h->dir);
        h->used = false;
        continue;
      }
      ENVRUN_CHECK(move_processes([this] { return pids(); }, h->dir));
    }
    return written;
  }

  Result<void> add_process(pid_t pid) override {
    ENVRUN_CHECK(check_path());
    // The tracking hierarchy first: a concurrent late join (apply) then either sees this
    // process there and moves it, or made its directory before the look below.
    int track = unified_ ? -1 : tracking();
    if (unified_) ENVRUN_CHECK(unified_->add_process(pid));
    else if (track >= 0) ENVRUN_CHECK(add_to(hier_[size_t(track)], pid));
    if (discovering_)
      for (auto& h : hier_)
        if (!h.used && usable_hierarchy(h)) h.used = fs::is_dir(h.dir);
    for (size_t i = 0; i < hier_.size(); ++i)
      if (hier_[i].used && int(i) != track) ENVRUN_CHECK(add_to(hier_[i], pid));
    return ok();
  }

  Result<std::vector<pid_t>> pids() const override {
    if (unified_) return unified_->pids();  // every process is in the unified hierarchy
    std::string t = tracking_dir();
    if (t.empty()) return std::vector<pid_t>{};
    return collect_pids(t);
  }

  Result<void> freeze() override {
    if (unified_) {
      if (legacy_frozen()) return ok();  // paused through the v1 freezer by an older envrun
      return unified_->freeze();
    }
    std::string d = dir_of_ctrl("freezer");
    if (d.empty()) return no_freezer();
    return freeze_v1(d);
  }

  Result<void> thaw() override {
    if (unified_) {
      ENVRUN_CHECK(unified_->thaw());
      return legacy_frozen() ? thaw_v1(dir_of_ctrl("freezer")) : ok();
    }
    std::string d = dir_of_ctrl("freezer");
    if (d.empty()) return no_freezer();
    return thaw_v1(d);
  }

  Result<bool> is_frozen() const override {
    if (!unified_ && dir_of_ctrl("freezer").empty()) return no_freezer();
    return CgroupManager::is_frozen_at(mounts_, path_);
  }

  Result<nlohmann::json> stats() const override {
    auto d = dirs();
    if (!d.empty() && !fs::is_dir(d.front()))
      return Error{ENOENT, ErrorKind::System, "cgroup: " + d.front() + " does not exist"};
    return stats_of([this](const std::string& c) { return dir_of_ctrl(c); });
  }

  Result<void> destroy() override {
    ENVRUN_CHECK(check_path());
    std::optional<Error> first;
    auto keep = [&](Result<void> r) {
      if (!r && !first) first = std::move(r).error();
    };
    for (const auto& h : hier_) {
      // Hierarchies not used here may have been joined late by another envrun (update): an
      // rmdir that finds nothing costs one failed lookup.
      if (!h.used && !usable_hierarchy(h)) continue;
      auto r = remove_cgroup(h.dir);
      if (r) r = remove_created_parents(h.created, h.dir);
      keep(std::move(r));
    }
    if (unified_) keep(unified_->destroy());
    if (first) return std::move(*first);
    return ok();
  }

 private:
  struct Hierarchy {
    std::string mount, dir;
    std::vector<std::string> controllers, created;
    bool used = false;  // the container has (or create() makes) its directory here
  };

  template <class F>
  static bool any_of(const Hierarchy& h, F pred) {
    return std::any_of(h.controllers.begin(), h.controllers.end(), pred);
  }
  static bool has(const Hierarchy& h, const std::string& c) {
    return std::find(h.controllers.begin(), h.controllers.end(), c) != h.controllers.end();
  }
  bool usable_hierarchy(const Hierarchy& h) const {
    return any_of(h, [&](const std::string& c) { return usable(c, mounts_.layout); });
  }

  Result<void> check_path() const {
    if (path_ == "/")
      return Error::make(ErrorKind::Config, "linux.cgroupsPath: the container's cgroup cannot be a hierarchy root");
    return ok();
  }

  // The directory of `c`'s hierarchy when the container uses it, else "".
  std::string dir_of_ctrl(const std::string& c) const {
    for (const auto& h : hier_)
      if (h.used && has(h, c)) return h.dir;
    return "";
  }

  // V1: the hierarchy that holds every process (pids, else freezer, else memory, else any);
  // -1 when none is used.
  int tracking() const {
    for (const char* c : {"pids", "freezer", "memory"})
      for (size_t i = 0; i < hier_.size(); ++i)
        if (hier_[i].used && has(hier_[i], c)) return int(i);
    for (size_t i = 0; i < hier_.size(); ++i)
      if (hier_[i].used) return int(i);
    return -1;
  }
  std::string tracking_dir() const {
    if (unified_) return unified_->dirs().front();
    int t = tracking();
    return t < 0 ? "" : hier_[size_t(t)].dir;
  }

  Result<void> make_dir(Hierarchy& h) {
    auto made = ENVRUN_TRY(make_levels(h.mount, path_));
    for (auto& d : made)
      if (std::find(h.created.begin(), h.created.end(), d) == h.created.end()) h.created.push_back(d);
    if (has(h, "cpuset")) ENVRUN_CHECK(fill_cpuset(h.mount, h.dir));
    return ok();
  }

  Result<void> add_to(Hierarchy& h, pid_t pid) {
    auto r = fs::write_file(fs::join(h.dir, "cgroup.procs"), std::to_string(pid));
    if (!r && r.error().sys_errno == ENOSPC && has(h, "cpuset")) {  // joined late, cpus/mems not yet copied
      ENVRUN_CHECK(fill_cpuset(h.mount, h.dir));
      r = fs::write_file(fs::join(h.dir, "cgroup.procs"), std::to_string(pid));
    }
    if (!r) return std::move(r).error().with_context("cgroup: add process " + std::to_string(pid));
    return ok();
  }

  Result<void> write_resources(const oci::Resources& r) {
    DirOf dir_of = [this](const std::string& c) { return mounted_dir(c); };
    const std::string f = "linux.resources.";
    if (r.memory) ENVRUN_CHECK(apply_memory(ENVRUN_TRY(need(dir_of, "memory", f + "memory")), *r.memory));
    if (r.cpu) ENVRUN_CHECK(apply_cpu(dir_of, *r.cpu));
    if (r.pids)
      ENVRUN_CHECK(write_knob(ENVRUN_TRY(need(dir_of, "pids", f + "pids")), "pids.max",
                              r.pids->limit > 0 ? std::to_string(r.pids->limit) : "max", f + "pids.limit"));
    if (r.block_io) ENVRUN_CHECK(apply_blkio(ENVRUN_TRY(need(dir_of, "blkio", f + "blockIO")), *r.block_io));
    if (!r.devices.empty() && (!dir_of("devices").empty() || !unified_))
      ENVRUN_CHECK(apply_devices(ENVRUN_TRY(need(dir_of, "devices", f + "devices")), r.devices));
    if (!r.hugepage_limits.empty() && (!dir_of("hugetlb").empty() || !unified_)) {
      auto dir = ENVRUN_TRY(need(dir_of, "hugetlb", f + "hugepageLimits"));
      for (size_t k = 0; k < r.hugepage_limits.size(); ++k)
        ENVRUN_CHECK(write_knob(dir, "hugetlb." + r.hugepage_limits[k].page_size + ".limit_in_bytes",
                                std::to_string(r.hugepage_limits[k].limit),
                                f + "hugepageLimits[" + std::to_string(k) + "]"));
    }
    // The companion applies what v1 cannot here: unified files, hugetlb/devices without v1 ones.
    return unified_ ? unified_->apply(r) : ok();
  }

  // The directory in `c`'s hierarchy whether used or not ("" when `c` is not mounted).
  std::string mounted_dir(const std::string& c) const {
    for (const auto& h : hier_)
      if (has(h, c)) return h.dir;
    return "";
  }

  // Hybrid: the v1 freezer of a container from before the unified freeze says FROZEN.
  bool legacy_frozen() const {
    std::string d = dir_of_ctrl("freezer");
    if (d.empty()) return false;
    auto s = read_knob(d, "freezer.state");
    return s && *s == "FROZEN";
  }

  static Error no_freezer() { return Error::make(ErrorKind::System, "cgroup: no freezer on this host"); }

  // Write FROZEN until the state reads FROZEN. Tasks that are forking or in vfork can keep the
  // cgroup in FREEZING; an occasional thaw and re-freeze gets them unstuck (as runc does).
  static Result<void> freeze_v1(const std::string& d) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int i = 0;; ++i) {
      if (i % 50 == 49) {
        (void)write_knob(d, "freezer.state", "THAWED", "cgroup: freeze");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      ENVRUN_CHECK(write_knob(d, "freezer.state", "FROZEN", "cgroup: freeze"));
      auto s = read_knob(d, "freezer.state");
      if (!s) return std::move(s).error().with_context("cgroup: freeze");
      if (*s == "FROZEN") return ok();
      if (std::chrono::steady_clock::now() >= deadline) {
        (void)write_knob(d, "freezer.state", "THAWED", "cgroup: freeze");
        return Error{ETIMEDOUT, ErrorKind::System, "cgroup: freeze " + d + ": timed out in state " + *s};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(i < 10 ? 1 : 10));
    }
  }

  static Result<void> thaw_v1(const std::string& d) {
    ENVRUN_CHECK(write_knob(d, "freezer.state", "THAWED", "cgroup: thaw"));
    if (wait_until(5000, [&] {
          auto s = read_knob(d, "freezer.state");
          return s && *s == "THAWED";
        })) return ok();
    return Error{ETIMEDOUT, ErrorKind::System, "cgroup: thaw " + d + ": timed out waiting for THAWED"};
  }

  CgroupMounts mounts_;
  std::string path_;
  bool discovering_;  // made with the path only: other envruns may join hierarchies late
  std::vector<Hierarchy> hier_;
  std::unique_ptr<CgroupManager> unified_;  // hybrid only
};

}  // namespace

std::unique_ptr<CgroupManager> make_v1(const CgroupMounts& mounts, const std::string& path, bool have_plan,
                                       const oci::Resources* planned) {
  return std::make_unique<CgroupV1Manager>(mounts, path, have_plan, planned);
}

}  // namespace envrun::runtime::cgroup_detail
