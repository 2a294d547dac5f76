// CgroupV2Manager: one directory in the unified hierarchy. Used alone on V2 hosts and as the
// "companion" of the v1 manager on hybrid hosts (process tracking, cgroup.events, freeze).
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include "kernel/fd.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "runtime/cgroup.hpp"

namespace envrun::runtime::cgroup_detail {

namespace {

const char* const kWantedControllers[] = {"cpu", "cpuset", "io", "memory", "pids", "hugetlb"};

std::set<std::string> words(const std::string& s) {
  std::set<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.insert(w);
  return out;
}

// Enable the controllers we use in `parent`'s subtree_control, one by one; what is not
// available (or refused, e.g. a parent with processes) is skipped.
void enable_controllers(const std::string& parent) {
  auto avail = read_knob(parent, "cgroup.controllers");
  auto enabled = read_knob(parent, "cgroup.subtree_control");
  if (!avail) return;
  auto have = words(*avail), on = words(enabled ? *enabled : "");
  for (const char* c : kWantedControllers) {
    if (!have.count(c) || on.count(c)) continue;
    auto r = fs::write_file(fs::join(parent, "cgroup.subtree_control"), std::string("+") + c);
    if (!r) log::debug("cgroup: cannot enable " + std::string(c) + " in " + parent + ": " + r.error().message);
  }
}

// ---- devices: a BPF_PROG_TYPE_CGROUP_DEVICE program built from the OCI rules ----

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

int access_bits(const std::string& access) {
  if (access.empty()) return BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
  int bits = 0;
  for (char c : access) {
    if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
    else if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
    else if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
    else return -1;
  }
  return bits;
}

// The rules are tried last to first; the first that matches decides. Nothing matching ->
// allow (like the v1 controller, whose default is allow until a rule denies everything).
// r2 = device type, r3 = requested access, r4 = major, r5 = minor.
Result<std::vector<bpf_insn>> device_program(const std::vector<oci::DeviceCgroupRule>& rules) {
  std::vector<bpf_insn> p = {
      insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0), insn(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff),
      insn(BPF_LDX | BPF_MEM | BPF_W, 3, 1, 0, 0), insn(BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16),
      insn(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0), insn(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0)};
  const int all = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
  for (size_t k = rules.size(); k-- > 0;) {
    const auto& r = rules[k];
    std::string field = "linux.resources.devices[" + std::to_string(k) + "]";
    int acc = access_bits(r.access);
    if (acc < 0) return Error::make(ErrorKind::Config, field + ".access: invalid \"" + r.access + "\"");
    std::vector<bpf_insn> b;  // JNE/JEQ offsets are patched to "next rule" below
    if (r.type == "c" || r.type == "b")
      b.push_back(insn(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 0,
                       r.type == "c" ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK));
    else if (!r.type.empty() && r.type != "a")
      return Error::make(ErrorKind::Config, field + ".type: invalid \"" + r.type + "\"");
    if (acc != all) {
      // allow: every requested bit must be allowed; deny: any requested bit is denied.
      b.push_back(insn(BPF_ALU | BPF_MOV | BPF_X, 1, 3, 0, 0));
      b.push_back(insn(BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, r.allow ? (~acc & all) : acc));
      b.push_back(insn(BPF_JMP | (r.allow ? BPF_JNE : BPF_JEQ) | BPF_K, 1, 0, 0, 0));
    }
    if (r.major && *r.major >= 0) b.push_back(insn(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, int32_t(*r.major)));
    if (r.minor && *r.minor >= 0) b.push_back(insn(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, int32_t(*r.minor)));
    bool unconditional = b.empty();
    b.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r.allow ? 1 : 0));
    b.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    for (size_t i = 0; i < b.size(); ++i)
      if (BPF_CLASS(b[i].code) == BPF_JMP && BPF_OP(b[i].code) != BPF_EXIT) b[i].off = int16_t(b.size() - i - 1);
    p.insert(p.end(), b.begin(), b.end());
    if (unconditional) return p;  // earlier rules are shadowed; the verifier rejects dead code
  }
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1));
  p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return p;
}

long sys_bpf(int cmd, bpf_attr* attr) { return ::syscall(SYS_bpf, cmd, attr, sizeof *attr); }

Result<UniqueFd> load_program(const std::vector<bpf_insn>& prog) {
  static char log_buf[65536];
  bpf_attr a{};
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insns = uint64_t(uintptr_t(prog.data()));
  a.insn_cnt = uint32_t(prog.size());
  a.license = uint64_t(uintptr_t("GPL"));
  long fd = sys_bpf(BPF_PROG_LOAD, &a);
  if (fd >= 0) return UniqueFd(int(fd));
  int e = errno;
  a.log_level = 1;
  a.log_buf = uint64_t(uintptr_t(log_buf));
  a.log_size = sizeof log_buf;
  log_buf[0] = 0;
  if (sys_bpf(BPF_PROG_LOAD, &a) >= 0) e = EINVAL;  // cannot happen; keep the first errno
  return Error{e, ErrorKind::System,
               std::string("linux.resources.devices: load device BPF program: ") + std::strerror(e) +
                   (log_buf[0] ? std::string(" (verifier: ") + log_buf + ")" : "")};
}

// Attach the new program, then detach the ones attached here before (an update replaces).
Result<void> attach_device_program(const std::string& dir, int prog_fd) {
  UniqueFd cg(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) return Error::sys("linux.resources.devices: open " + dir);
  uint32_t ids[64];
  bpf_attr q{};
  q.query.target_fd = uint32_t(cg.get());
  q.query.attach_type = BPF_CGROUP_DEVICE;
  q.query.prog_ids = uint64_t(uintptr_t(ids));
  q.query.prog_cnt = 64;
  uint32_t old = sys_bpf(BPF_PROG_QUERY, &q) == 0 ? q.query.prog_cnt : 0;
  bpf_attr a{};
  a.target_fd = uint32_t(cg.get());
  a.attach_bpf_fd = uint32_t(prog_fd);
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &a) != 0)
    return Error::sys("linux.resources.devices: attach device BPF program to " + dir);
  for (uint32_t i = 0; i < old && i < 64; ++i) {
    bpf_attr g{};
    g.prog_id = ids[i];
    UniqueFd old_fd(int(sys_bpf(BPF_PROG_GET_FD_BY_ID, &g)));
    if (!old_fd) continue;
    bpf_attr d{};
    d.target_fd = uint32_t(cg.get());
    d.attach_bpf_fd = uint32_t(old_fd.get());
    d.attach_type = BPF_CGROUP_DEVICE;
    if (sys_bpf(BPF_PROG_DETACH, &d) != 0)
      log::warn("cgroup: detach old device program from " + dir + ": " + std::strerror(errno));
  }
  return ok();
}

Result<void> apply_devices(const std::string& dir, const std::vector<oci::DeviceCgroupRule>& rules) {
  if (rules.empty()) return ok();
  auto prog = ENVRUN_TRY(device_program(rules));
  auto fd = ENVRUN_TRY(load_program(prog));
  return attach_device_program(dir, fd.get());
}

// ---- resources ----

// OCI swap counts memory plus swap; memory.swap.max counts swap alone.
Result<std::optional<std::string>> swap_max_value(const oci::MemoryResources& m) {
  int64_t limit = m.limit.value_or(0);
  if (!m.swap) {
    if (limit == -1) return std::optional<std::string>("max");
    return std::optional<std::string>();
  }
  int64_t swap = *m.swap;
  if (swap == -1) return std::optional<std::string>("max");
  if (swap == 0) return std::optional<std::string>();
  if (limit <= 0)
    return Error::make(ErrorKind::Config, "linux.resources.memory.swap: a swap limit needs linux.resources.memory.limit");
  if (swap < limit)
    return Error::make(ErrorKind::Config,
                       "linux.resources.memory.swap: must be >= linux.resources.memory.limit (it counts memory plus swap)");
  return std::optional<std::string>(std::to_string(swap - limit));
}

Result<void> apply_memory(const std::string& dir, const oci::MemoryResources& m) {
  const std::string f = "linux.resources.memory.";
  if (m.limit && *m.limit != 0)
    ENVRUN_CHECK(write_knob(dir, "memory.max", *m.limit < 0 ? "max" : std::to_string(*m.limit), f + "limit"));
  if (m.reservation && *m.reservation != 0)
    ENVRUN_CHECK(write_knob(dir, "memory.low", *m.reservation < 0 ? "max" : std::to_string(*m.reservation),
                            f + "reservation"));
  auto swap = ENVRUN_TRY(swap_max_value(m));
  if (swap) {
    bool have = fs::exists(fs::join(dir, "memory.swap.max"));
    if (!have && *swap != "max")
      return Error::make(ErrorKind::Config, f + "swap: swap accounting is not enabled on this host");
    if (have) ENVRUN_CHECK(write_knob(dir, "memory.swap.max", *swap, f + "swap"));
  }
  if (m.swappiness) log::warn(f + "swappiness: not supported by cgroup v2, ignored");
  if (m.disable_oom_killer.value_or(false)) log::warn(f + "disableOOMKiller: not supported by cgroup v2, ignored");
  if (m.kernel) log::warn(f + "kernel: deprecated, ignored");
  if (m.kernel_tcp) log::warn(f + "kernelTCP: deprecated, ignored");
  return ok();
}

// The quota part of cpu.max ("max" when unreadable), kept when only the period changes.
std::string current_quota(const std::string& dir) {
  auto cur = read_knob(dir, "cpu.max");
  if (!cur || cur->empty()) return "max";
  return cur->substr(0, cur->find(' '));
}

Result<void> apply_cpu(const std::string& dir, const oci::CpuResources& c) {
  const std::string f = "linux.resources.cpu.";
  if (c.shares && *c.shares != 0) {
    uint64_t s = std::clamp<uint64_t>(*c.shares, 2, 262144);
    ENVRUN_CHECK(write_knob(dir, "cpu.weight", std::to_string(1 + ((s - 2) * 9999) / 262142), f + "shares"));
  }
  bool quota = c.quota && *c.quota != 0, period = c.period && *c.period != 0;
  if (quota || period) {
    std::string q;
    if (quota) q = *c.quota < 0 ? "max" : std::to_string(*c.quota);
    else q = current_quota(dir);
    std::string v = period ? q + " " + std::to_string(*c.period) : q;
    ENVRUN_CHECK(write_knob(dir, "cpu.max", v, f + (quota ? "quota" : "period")));
  }
  if (c.burst) ENVRUN_CHECK(write_knob(dir, "cpu.max.burst", std::to_string(*c.burst), f + "burst"));
  if (c.idle) ENVRUN_CHECK(write_knob(dir, "cpu.idle", std::to_string(*c.idle), f + "idle"));
  if ((c.realtime_runtime && *c.realtime_runtime != 0) || (c.realtime_period && *c.realtime_period != 0))
    return Error::make(ErrorKind::Config, f + (c.realtime_runtime ? "realtimeRuntime" : "realtimePeriod") +
                                              ": not supported by cgroup v2");
  if (!c.cpus.empty()) ENVRUN_CHECK(write_knob(dir, "cpuset.cpus", c.cpus, f + "cpus"));
  if (!c.mems.empty()) ENVRUN_CHECK(write_knob(dir, "cpuset.mems", c.mems, f + "mems"));
  return ok();
}

// blkio weight (10..1000) -> io.weight (1..10000).
uint64_t io_weight(uint64_t w) {
  w = std::clamp<uint64_t>(w, 10, 1000);
  return 1 + (w - 10) * 9999 / 990;
}

Result<void> apply_io(const std::string& dir, const oci::BlockIoResources& b) {
  const std::string f = "linux.resources.blockIO.";
  bool bfq = !fs::exists(fs::join(dir, "io.weight")) && fs::exists(fs::join(dir, "io.bfq.weight"));
  const char* wfile = bfq ? "io.bfq.weight" : "io.weight";
  auto weight = [&](uint16_t w) { return std::to_string(bfq ? w : io_weight(w)); };
  if (b.weight && *b.weight) ENVRUN_CHECK(write_knob(dir, wfile, "default " + weight(*b.weight), f + "weight"));
  if (b.leaf_weight) log::warn(f + "leafWeight: not supported by cgroup v2, ignored");
  for (size_t k = 0; k < b.weight_device.size(); ++k) {
    const auto& d = b.weight_device[k];
    if (d.weight)
      ENVRUN_CHECK(write_knob(dir, wfile, dev_key(d.major, d.minor) + " " + weight(*d.weight),
                              f + "weightDevice[" + std::to_string(k) + "]"));
  }
  struct Throttle {
    const std::vector<oci::BlockIoDevice>* list;
    const char *key, *field;
  } throttles[] = {{&b.throttle_read_bps_device, "rbps", "throttleReadBpsDevice"},
                   {&b.throttle_write_bps_device, "wbps", "throttleWriteBpsDevice"},
                   {&b.throttle_read_iops_device, "riops", "throttleReadIOPSDevice"},
                   {&b.throttle_write_iops_device, "wiops", "throttleWriteIOPSDevice"}};
  for (const auto& t : throttles) {
    for (size_t k = 0; k < t.list->size(); ++k) {
      const auto& d = (*t.list)[k];
      std::string rate = d.rate ? std::to_string(d.rate) : "max";
      ENVRUN_CHECK(write_knob(dir, "io.max", dev_key(d.major, d.minor) + " " + t.key + "=" + rate,
                              f + t.field + "[" + std::to_string(k) + "]"));
    }
  }
  return ok();
}

Result<void> apply_hugetlb(const std::string& dir, const std::vector<oci::HugepageLimit>& limits) {
  for (size_t k = 0; k < limits.size(); ++k) {
    const auto& h = limits[k];
    ENVRUN_CHECK(write_knob(dir, "hugetlb." + h.page_size + ".max", std::to_string(h.limit),
                            "linux.resources.hugepageLimits[" + std::to_string(k) + "]"));
  }
  return ok();
}

Result<void> apply_unified(const std::string& dir, const std::map<std::string, std::string>& unified) {
  for (const auto& [key, value] : unified) {
    std::string field = "linux.resources.unified." + key;
    static const std::set<std::string> managed = {"cgroup.procs", "cgroup.threads", "cgroup.subtree_control",
                                                  "cgroup.freeze", "cgroup.kill", "cgroup.type"};
    if (key.empty() || key.find('/') != std::string::npos || key[0] == '.' || managed.count(key))
      return Error::make(ErrorKind::Config, field + ": not a resource file name envrun lets a config write");
    ENVRUN_CHECK(write_knob(dir, key, value, field));
  }
  return ok();
}

// ---- stats ----

nlohmann::json io_entries(const std::string& dir, const char* rkey, const char* wkey) {
  auto text = fs::read_file(fs::join(dir, "io.stat"));
  nlohmann::json out = nlohmann::json::array();
  if (!text) return out;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string dev, kv;
    ls >> dev;
    unsigned major = 0, minor = 0;
    if (std::sscanf(dev.c_str(), "%u:%u", &major, &minor) != 2) continue;
    while (ls >> kv) {
      auto eq = kv.find('=');
      if (eq == std::string::npos) continue;
      std::string k = kv.substr(0, eq);
      const char* op = k == rkey ? "Read" : k == wkey ? "Write" : nullptr;
      if (op)
        out.push_back({{"major", major}, {"minor", minor}, {"op", op},
                       {"value", std::strtoull(kv.c_str() + eq + 1, nullptr, 10)}});
    }
  }
  return out;
}

nlohmann::json stats_of(const std::string& dir) {
  auto cpu = read_keyed(dir, "cpu.stat");
  nlohmann::json j;
  j["cpu"] = {{"usage", {{"total", cpu["usage_usec"] * 1000}, {"percpu", nlohmann::json::array()},
                         {"kernel", cpu["system_usec"] * 1000}, {"user", cpu["user_usec"] * 1000}}},
              {"throttling", {{"periods", cpu["nr_periods"]}, {"throttledPeriods", cpu["nr_throttled"]},
                              {"throttledTime", cpu["throttled_usec"] * 1000}}}};
  auto stat = read_keyed(dir, "memory.stat");
  auto events = read_keyed(dir, "memory.events");
  uint64_t cur = read_u64(dir, "memory.current").value_or(0);
  uint64_t swap = read_u64(dir, "memory.swap.current").value_or(0);
  uint64_t mem_max = read_u64(dir, "memory.max").value_or(UINT64_MAX);
  uint64_t swap_max = read_u64(dir, "memory.swap.max").value_or(UINT64_MAX);
  // "swap" reports memory+swap, as v1's memsw does (what runc reports too).
  j["memory"] = {{"usage", {{"usage", cur}, {"max", read_u64(dir, "memory.peak").value_or(0)},
                            {"failcnt", events["max"]}, {"limit", mem_max}}},
                 {"swap", {{"usage", cur + swap}, {"max", 0}, {"failcnt", 0},
                           {"limit", (mem_max == UINT64_MAX || swap_max == UINT64_MAX) ? UINT64_MAX : mem_max + swap_max}}},
                 {"kernel", {{"usage", stat["kernel"]}, {"max", 0}, {"failcnt", 0}, {"limit", 0}}},
                 {"raw", stat},
                 {"cache", stat["file"]}};
  uint64_t pmax = read_u64(dir, "pids.max").value_or(0);
  j["pids"] = {{"current", read_u64(dir, "pids.current").value_or(0)}, {"limit", pmax == UINT64_MAX ? 0 : pmax}};
  j["blkio"] = {{"ioServiceBytesRecursive", io_entries(dir, "rbytes", "wbytes")},
                {"ioServicedRecursive", io_entries(dir, "rios", "wios")}};
  return j;
}

// ---- the manager ----

class CgroupV2Manager final : public CgroupManager {
 public:
  CgroupV2Manager(const CgroupMounts& m, const std::string& path, bool companion)
      : mounts_(m), path_(fs::normalize("/" + path)), dir_(fs::join(m.unified, path_)), companion_(companion) {}

  const std::string& path() const override { return path_; }
  std::vector<std::string> dirs() const override { return {dir_}; }

  Result<void> create() override {
    auto made = ENVRUN_TRY(make_levels(mounts_.unified, path_, enable_controllers));
    for (auto& d : made)
      if (std::find(created_.begin(), created_.end(), d) == created_.end()) created_.push_back(d);
    return ok();
  }

  Result<void> apply(const oci::Resources& r) override {
    if (!companion_) {
      if (r.memory) ENVRUN_CHECK(apply_memory(dir_, *r.memory));
      if (r.cpu) ENVRUN_CHECK(apply_cpu(dir_, *r.cpu));
      if (r.pids)
        ENVRUN_CHECK(write_knob(dir_, "pids.max", r.pids->limit > 0 ? std::to_string(r.pids->limit) : "max",
                                "linux.resources.pids.limit"));
      if (r.block_io) ENVRUN_CHECK(apply_io(dir_, *r.block_io));
    }
    if (!companion_ || !mounts_.v1.count("hugetlb")) ENVRUN_CHECK(apply_hugetlb(dir_, r.hugepage_limits));
    if (!companion_ || !mounts_.v1.count("devices")) ENVRUN_CHECK(apply_devices(dir_, r.devices));
    return apply_unified(dir_, r.unified);
  }

  Result<void> add_process(pid_t pid) override {
    auto r = fs::write_file(fs::join(dir_, "cgroup.procs"), std::to_string(pid));
    if (!r) return std::move(r).error().with_context("cgroup: add process " + std::to_string(pid));
    return ok();
  }

  Result<std::vector<pid_t>> pids() const override { return collect_pids(dir_); }

  Result<void> freeze() override { return set_frozen(true); }
  Result<void> thaw() override { return set_frozen(false); }

  Result<bool> is_frozen() const override {
    if (!fs::is_dir(dir_)) return Error{ENOENT, ErrorKind::System, "cgroup: " + dir_ + " does not exist"};
    return v2_frozen(dir_);
  }

  Result<nlohmann::json> stats() const override {
    if (!fs::is_dir(dir_)) return Error{ENOENT, ErrorKind::System, "cgroup: " + dir_ + " does not exist"};
    return stats_of(dir_);
  }

  Result<void> destroy() override {
    ENVRUN_CHECK(remove_cgroup(dir_));
    return remove_created_parents(created_, dir_);
  }

 private:
  Result<void> set_frozen(bool frozen) {
    const char* v = frozen ? "1" : "0";
    auto r = fs::write_file(fs::join(dir_, "cgroup.freeze"), v);
    if (!r) return std::move(r).error().with_context(frozen ? "cgroup: freeze" : "cgroup: thaw");
    auto reached = [&] { return v2_frozen(dir_) == frozen; };
    if (wait_until(5000, reached)) return ok();
    if (frozen) (void)fs::write_file(fs::join(dir_, "cgroup.freeze"), "0");
    return Error{ETIMEDOUT, ErrorKind::System,
                 std::string("cgroup: ") + (frozen ? "freeze" : "thaw") + " " + dir_ + ": timed out waiting for cgroup.events"};
  }

  CgroupMounts mounts_;
  std::string path_, dir_;
  bool companion_;
  std::vector<std::string> created_;
};

}  // namespace

std::unique_ptr<CgroupManager> make_v2(const CgroupMounts& mounts, const std::string& path, bool companion) {
  return std::make_unique<CgroupV2Manager>(mounts, path, companion);
}

}  // namespace envrun::runtime::cgroup_detail
