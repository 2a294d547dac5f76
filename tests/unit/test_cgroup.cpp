// Cgroup manager tests on this host's real cgroups (hybrid: v1 controllers + cgroup2 at
// /sys/fs/cgroup/unified). Every cgroup lives under /envrun-test-<pid>/ and is destroyed by a
// guard; every forked child is killed and reaped by a guard.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>

#include "kernel/fs.hpp"
#include "kernel/process.hpp"
#include "runtime/cgroup.hpp"

using namespace envrun;
using namespace envrun::runtime;

namespace {

std::string test_path(const std::string& leaf) { return "/envrun-test-" + std::to_string(::getpid()) + "/" + leaf; }

// Kills what is left in the cgroup (thawing first: frozen tasks cannot die), then destroys it.
struct CgroupGuard {
  std::unique_ptr<CgroupManager> m;
  explicit CgroupGuard(std::unique_ptr<CgroupManager> mgr) : m(std::move(mgr)) {}
  ~CgroupGuard() {
    if (auto f = m->is_frozen(); f && *f) (void)m->thaw();
    if (auto p = m->pids())
      for (pid_t pid : *p) ::kill(pid, SIGKILL);
    (void)m->destroy();
  }
  CgroupManager* operator->() { return m.get(); }
};

// A forked child that waits for a byte on `go` before running `body`; killed and reaped at scope end.
struct Child {
  pid_t pid = -1;
  int go_w = -1;
  template <class F>
  explicit Child(F body) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(p[1]);
      char c;
      if (::read(p[0], &c, 1) != 1) ::_exit(100);
      ::_exit(body());
    }
    ::close(p[0]);
    go_w = p[1];
  }
  void go() {
    REQUIRE(::write(go_w, "g", 1) == 1);
    ::close(go_w);
    go_w = -1;
  }
  int wait() {  // raw wait status
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    pid = -1;
    return st;
  }
  ~Child() {
    if (go_w >= 0) ::close(go_w);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

CgroupMounts host_mounts() {
  auto m = CgroupMounts::detect();
  REQUIRE(m.ok());
  return *m;
}

std::string knob(const CgroupMounts& m, const std::string& ctrl, const std::string& path, const std::string& file) {
  auto r = fs::read_file(fs::join(fs::join(m.v1.at(ctrl), path), file));
  REQUIRE(r.ok());
  std::string s = *r;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Where the container's directory would be in the v1 hierarchy of `ctrl`.
std::string v1_dir(const CgroupMounts& m, const std::string& ctrl, const std::string& path) {
  return fs::join(m.v1.at(ctrl), path);
}

// The v1 controllers (of this host) whose hierarchy holds the container's directory.
std::set<std::string> joined(const CgroupMounts& m, const std::string& path) {
  std::set<std::string> out;
  for (const auto& [ctrl, mount] : m.v1)
    if (fs::is_dir(fs::join(mount, path))) out.insert(ctrl);
  return out;
}

// The OCI default spec's device rules: deny everything, allow the usual character devices.
oci::Resources default_resources() {
  oci::Resources r;
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
  for (auto [maj, min] : {std::pair{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}})
    r.devices.push_back({true, "c", maj, min, "rwm"});
  r.devices.push_back({true, "c", 136, std::nullopt, "rwm"});
  return r;
}

// Whether /proc/<pid>/cgroup puts the process at `path` in the hierarchy of `ctrl` ("": unified).
bool in_cgroup(pid_t pid, const std::string& ctrl, const std::string& path) {
  auto text = fs::read_file("/proc/" + std::to_string(pid) + "/cgroup");
  REQUIRE(text.ok());
  return text->find(":" + ctrl + ":" + path + "\n") != std::string::npos;
}

// A shared counter for a child to bump (fork keeps the mapping).
std::atomic<uint64_t>* shared_counter() {
  auto* c = static_cast<std::atomic<uint64_t>*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(c != MAP_FAILED);
  c->store(0);
  return c;
}

// Remove the /envrun-test-<pid> level wherever it is left empty (managers made with the path
// only do not know they created it).
void remove_test_root(const CgroupMounts& m) {
  std::string root = "/envrun-test-" + std::to_string(::getpid());
  for (const auto& [ctrl, mount] : m.v1) ::rmdir(fs::join(mount, root).c_str());
  ::rmdir(fs::join(m.unified, root).c_str());
}

// Poll (bounded) until the child's counter reaches `target`.
bool subprocess_wait_until_counter(std::atomic<uint64_t>* counter, uint64_t target) {
  for (int i = 0; i < 5000; ++i) {
    if (counter->load() >= target) return true;
    ::usleep(1000);
  }
  return false;
}

// A child body that sleeps until killed.
int sleep_forever() {
  ::pause();
  return 0;
}

// In the child: open `path` read-only; 0 on success, else errno.
int try_open(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

}  // namespace

TEST_CASE("parse_mountinfo tells the V1, Hybrid and V2 layouts apart", "[cgroup]") {
  const std::string v1 =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd\n";
  const std::string unified = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";

  auto a = CgroupMounts::parse_mountinfo(v1);
  REQUIRE(a.ok());
  CHECK(a->layout == CgroupLayout::V1);
  CHECK(a->v1.at("cpu") == "/sys/fs/cgroup/cpu,cpuacct");
  CHECK(a->v1.at("cpuacct") == "/sys/fs/cgroup/cpu,cpuacct");
  CHECK(a->v1.at("memory") == "/sys/fs/cgroup/memory");
  CHECK(a->v1.at("systemd") == "/sys/fs/cgroup/systemd");
  CHECK(a->v1.size() == 4);  // no "rw", "xattr", "release_agent"
  CHECK(a->unified.empty());

  auto h = CgroupMounts::parse_mountinfo(v1 + unified);
  REQUIRE(h.ok());
  CHECK(h->layout == CgroupLayout::Hybrid);
  CHECK(h->unified == "/sys/fs/cgroup/unified");
  CHECK(h->v1.count("memory") == 1);

  auto v2 = CgroupMounts::parse_mountinfo(
      "22 1 0:20 / /proc rw - proc proc rw\n"
      "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n");
  REQUIRE(v2.ok());
  CHECK(v2->layout == CgroupLayout::V2);
  CHECK(v2->unified == "/sys/fs/cgroup");
  CHECK(v2->v1.empty());

  // Escaped mount points (\040 = space).
  auto esc = CgroupMounts::parse_mountinfo("1 0 0:1 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n");
  REQUIRE(esc.ok());
  CHECK(esc->unified == "/mnt/my cg");

  auto none = CgroupMounts::parse_mountinfo("22 1 0:20 / /proc rw - proc proc rw\n");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().kind == ErrorKind::System);
  CHECK(none.error().message == "no cgroup filesystem mounted");
}

TEST_CASE("detect() sees this host's hybrid layout", "[cgroup]") {
  auto m = host_mounts();
  CHECK(m.layout == CgroupLayout::Hybrid);
  for (const char* c : {"memory", "pids", "freezer", "cpu", "cpuacct", "cpuset", "devices", "blkio", "systemd"})
    CHECK(m.v1.count(c) == 1);
  CHECK_FALSE(m.unified.empty());
  CHECK(m.unified == "/sys/fs/cgroup/unified");
}

TEST_CASE("create and apply write the limits; destroy removes every directory", "[cgroup]") {
  auto mounts = host_mounts();
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 64 << 20;
  r.memory->reservation = 32 << 20;
  r.memory->swappiness = 10;
  r.pids = oci::PidsResources{17};
  r.cpu = oci::CpuResources{};
  r.cpu->quota = 50000;
  r.cpu->period = 200000;
  r.cpu->shares = 512;
  r.cpu->cpus = "0";
  std::string p = test_path("limits");
  CgroupGuard cg(CgroupManager::make(mounts, p, &r));
  REQUIRE(cg->create().ok());
  auto dirs = cg->dirs();
  CHECK(dirs.size() == 6);  // memory, pids, cpuacct, cpu, cpuset + unified
  for (const auto& d : dirs) CHECK(fs::is_dir(d));
  CHECK(joined(mounts, p) == std::set<std::string>{"cpu", "cpuacct", "cpuset", "memory", "pids"});
  CHECK(fs::is_dir(fs::join(mounts.unified, p)));

  auto applied = cg->apply(r);
  INFO((applied ? "" : applied.error().message));
  REQUIRE(applied.ok());

  CHECK(knob(mounts, "memory", p, "memory.limit_in_bytes") == std::to_string(64 << 20));
  CHECK(knob(mounts, "memory", p, "memory.soft_limit_in_bytes") == std::to_string(32 << 20));
  CHECK(knob(mounts, "memory", p, "memory.swappiness") == "10");
  CHECK(knob(mounts, "pids", p, "pids.max") == "17");
  CHECK(knob(mounts, "cpu", p, "cpu.cfs_quota_us") == "50000");
  CHECK(knob(mounts, "cpu", p, "cpu.cfs_period_us") == "200000");
  CHECK(knob(mounts, "cpu", p, "cpu.shares") == "512");
  CHECK(knob(mounts, "cpuset", p, "cpuset.cpus") == "0");
  CHECK_FALSE(knob(mounts, "cpuset", p, "cpuset.mems").empty());  // copied from the parent

  // Unlimited pids and an unlimited quota read back as "max" / -1.
  oci::Resources r2;
  r2.pids = oci::PidsResources{0};
  r2.cpu = oci::CpuResources{};
  r2.cpu->quota = -1;
  REQUIRE(cg->apply(r2).ok());
  CHECK(knob(mounts, "pids", p, "pids.max") == "max");
  CHECK(knob(mounts, "cpu", p, "cpu.cfs_quota_us") == "-1");
  CHECK(joined(mounts, p).size() == 5);  // nothing joined late

  REQUIRE(cg->destroy().ok());
  for (const auto& d : dirs) {
    CHECK_FALSE(fs::exists(d));
    CHECK_FALSE(fs::exists(d.substr(0, d.rfind('/'))));  // the /envrun-test-<pid> level it created
  }
  CHECK(cg->destroy().ok());  // idempotent
}

TEST_CASE("memory and swap limits can be raised and lowered", "[cgroup]") {
  auto mounts = host_mounts();
  CgroupGuard cg(CgroupManager::make(mounts, test_path("memsw")));
  REQUIRE(cg->create().ok());
  std::string p = test_path("memsw");
  bool memsw = fs::exists(fs::join(fs::join(mounts.v1.at("memory"), p), "memory.memsw.limit_in_bytes"));
  auto set = [&](int64_t limit, int64_t swap) {
    oci::Resources r;
    r.memory = oci::MemoryResources{};
    r.memory->limit = limit;
    if (memsw) r.memory->swap = swap;
    auto res = cg->apply(r);
    INFO((res ? "" : res.error().message));
    REQUIRE(res.ok());
    CHECK(knob(mounts, "memory", p, "memory.limit_in_bytes") == std::to_string(limit));
    if (memsw) CHECK(knob(mounts, "memory", p, "memory.memsw.limit_in_bytes") == std::to_string(swap));
  };
  set(64 << 20, 64 << 20);
  set(256 << 20, 512 << 20);  // raising: memory+swap must go first
  set(32 << 20, 32 << 20);    // lowering: the limit must go first
}

TEST_CASE("a process is added, listed, frozen through the unified hierarchy, thawed and accounted", "[cgroup]") {
  auto mounts = host_mounts();
  std::string p = test_path("freeze");
  CgroupGuard cg(CgroupManager::make(mounts, p, nullptr));  // no resources
  REQUIRE(cg->create().ok());
  CHECK(joined(mounts, p) == std::set<std::string>{"cpuacct", "memory", "pids"});
  auto* counter = shared_counter();
  Child child([counter] {
    // Memory charged to the new cgroup: touched after joining it.
    auto* touched = static_cast<volatile char*>(
        ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    for (size_t i = 0; i < (1 << 20); i += 4096) touched[i] = 1;
    for (;;) counter->fetch_add(1);
    return 0;
  });
  REQUIRE(cg->add_process(child.pid).ok());
  child.go();

  auto pids = cg->pids();
  REQUIRE(pids.ok());
  CHECK(*pids == std::vector<pid_t>{child.pid});
  // Hybrid: the process is in the unified hierarchy too, and in the v1 hierarchies joined.
  CHECK(in_cgroup(child.pid, "", p));
  CHECK(in_cgroup(child.pid, "memory", p));
  CHECK_FALSE(in_cgroup(child.pid, "cpu", p));

  REQUIRE(subprocess_wait_until_counter(counter, 1000));
  REQUIRE(cg->freeze().ok());
  auto frozen = cg->is_frozen();
  REQUIRE(frozen.ok());
  CHECK(*frozen);
  auto events = fs::read_file(fs::join(fs::join(mounts.unified, p), "cgroup.events"));
  REQUIRE(events.ok());
  CHECK(events->find("frozen 1") != std::string::npos);
  CHECK_FALSE(fs::exists(v1_dir(mounts, "freezer", p)));  // the v1 freezer is not used
  auto at = CgroupManager::is_frozen_at(mounts, p);
  REQUIRE(at.ok());
  CHECK(*at);
  char st = proc::state_letter(child.pid);
  CHECK(st != 'R');
  uint64_t before = counter->load();
  ::usleep(50000);
  CHECK(counter->load() == before);  // nothing runs while frozen

  REQUIRE(cg->thaw().ok());
  CHECK_FALSE(*cg->is_frozen());
  CHECK_FALSE(*CgroupManager::is_frozen_at(mounts, p));
  CHECK(subprocess_wait_until_counter(counter, before + 1000));

  auto stats = cg->stats();
  REQUIRE(stats.ok());
  INFO(stats->dump());
  CHECK((*stats)["cpu"]["usage"]["total"].get<uint64_t>() > 0);  // cpuacct
  CHECK((*stats)["cpu"]["usage"]["percpu"].size() >= 1);
  CHECK((*stats)["cpu"]["throttling"]["periods"].get<uint64_t>() == 0);  // cpu not joined
  CHECK((*stats)["pids"]["current"].get<uint64_t>() == 1);
  CHECK((*stats)["memory"]["usage"]["usage"].get<uint64_t>() > 0);
  CHECK((*stats)["memory"]["raw"].contains("rss"));
  CHECK((*stats)["blkio"]["ioServiceBytesRecursive"].empty());
  ::munmap(counter, 4096);
}

TEST_CASE("pids.max stops the fork that would exceed it", "[cgroup]") {
  auto mounts = host_mounts();
  CgroupGuard cg(CgroupManager::make(mounts, test_path("pids")));
  REQUIRE(cg->create().ok());
  oci::Resources r;
  r.pids = oci::PidsResources{3};
  REQUIRE(cg->apply(r).ok());
  int res[2];
  REQUIRE(::pipe2(res, O_CLOEXEC) == 0);
  // The child is process 1 of 3; it forks until a fork fails and reports (forks, errno).
  Child child([w = res[1]] {
    pid_t kids[8];
    int n = 0, err = 0;
    while (n < 8) {
      pid_t k = ::fork();
      if (k == 0) {
        ::pause();
        ::_exit(0);
      }
      if (k < 0) {
        err = errno;
        break;
      }
      kids[n++] = k;
    }
    int out[2] = {n, err};
    (void)!::write(w, out, sizeof out);
    for (int i = 0; i < n; ++i) {
      ::kill(kids[i], SIGKILL);
      ::waitpid(kids[i], nullptr, 0);
    }
    return 0;
  });
  ::close(res[1]);
  REQUIRE(cg->add_process(child.pid).ok());
  child.go();
  int out[2] = {-1, -1};
  REQUIRE(::read(res[0], out, sizeof out) == sizeof out);
  ::close(res[0]);
  CHECK(out[0] == 2);  // the 4th process in the cgroup could not be forked
  CHECK(out[1] == EAGAIN);
  int st = child.wait();
  CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
}

TEST_CASE("the memory limit OOM-kills a process that exceeds it", "[cgroup]") {
  auto mounts = host_mounts();
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 32 << 20;
  CgroupGuard cg(CgroupManager::make(mounts, test_path("oom"), &r));
  REQUIRE(cg->create().ok());
  if (fs::exists(fs::join(fs::join(mounts.v1.at("memory"), test_path("oom")), "memory.memsw.limit_in_bytes")))
    r.memory->swap = 32 << 20;
  REQUIRE(cg->apply(r).ok());
  Child child([] {
    const size_t size = 128u << 20;
    char* p = static_cast<char*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) return 2;
    for (size_t i = 0; i < size; i += 4096) p[i] = 1;
    return 0;  // reached only if the limit did not hold
  });
  REQUIRE(cg->add_process(child.pid).ok());
  child.go();
  int st = child.wait();
  CHECK(WIFSIGNALED(st));
  CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL));
  auto stats = cg->stats();
  REQUIRE(stats.ok());
  // failcnt is not tracked by every kernel (6.18's v1 keeps it 0); the peak is.
  CHECK((*stats)["memory"]["usage"]["max"].get<uint64_t>() >= (16u << 20));
  CHECK((*stats)["memory"]["usage"]["limit"].get<uint64_t>() == (32u << 20));
}

TEST_CASE("v1 device rules are enforced in order", "[cgroup]") {
  auto mounts = host_mounts();
  oci::Resources r;
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});  // deny all
  r.devices.push_back({true, "c", 1, 5, "rwm"});                        // allow /dev/zero
  CgroupGuard cg(CgroupManager::make(mounts, test_path("devices"), &r));
  REQUIRE(cg->create().ok());
  CHECK(joined(mounts, test_path("devices")) == std::set<std::string>{"cpuacct", "devices", "memory", "pids"});
  REQUIRE(cg->apply(r).ok());
  CHECK(knob(mounts, "devices", test_path("devices"), "devices.list") == "c 1:5 rwm");
  int res[2];
  REQUIRE(::pipe2(res, O_CLOEXEC) == 0);
  Child child([w = res[1]] {
    int out[2] = {try_open("/dev/null"), try_open("/dev/zero")};
    (void)!::write(w, out, sizeof out);
    return 0;
  });
  ::close(res[1]);
  REQUIRE(cg->add_process(child.pid).ok());
  child.go();
  int out[2] = {-1, -1};
  REQUIRE(::read(res[0], out, sizeof out) == sizeof out);
  ::close(res[0]);
  CHECK(out[0] == EPERM);
  CHECK(out[1] == 0);
}

TEST_CASE("v2 device rules are enforced by an eBPF program", "[cgroup]") {
  // A pure v2 manager over this host's unified hierarchy: the BPF device hook of the task's
  // cgroup2 is checked before the v1 devices controller, so it works on hybrid hosts too.
  CgroupMounts v2;
  v2.layout = CgroupLayout::V2;
  v2.unified = host_mounts().unified;
  CgroupGuard cg(CgroupManager::make(v2, test_path("bpf")));
  REQUIRE(cg->create().ok());
  oci::Resources r;
  r.devices.push_back({false, "", std::nullopt, std::nullopt, "rwm"});  // deny all
  r.devices.push_back({true, "c", 1, 5, "rwm"});                       // allow /dev/zero
  r.devices.push_back({true, "c", 1, 3, "rwm"});                       // allow /dev/null...
  r.devices.push_back({false, "c", 1, 3, "w"});                        // ...but not for writing
  auto applied = cg->apply(r);
  INFO((applied ? "" : applied.error().message));
  REQUIRE(applied.ok());
  int res[2];
  REQUIRE(::pipe2(res, O_CLOEXEC) == 0);
  Child child([w = res[1]] {
    int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    int out[4] = {try_open("/dev/full"), try_open("/dev/zero"), try_open("/dev/null"), fd < 0 ? errno : 0};
    (void)!::write(w, out, sizeof out);
    return 0;
  });
  ::close(res[1]);
  REQUIRE(cg->add_process(child.pid).ok());
  child.go();
  int out[4] = {-1, -1, -1, -1};
  REQUIRE(::read(res[0], out, sizeof out) == sizeof out);
  ::close(res[0]);
  CHECK(out[0] == EPERM);  // /dev/full (1:7): denied by the deny-all
  CHECK(out[1] == 0);
  CHECK(out[2] == 0);
  CHECK(out[3] == EPERM);
  child.wait();

  // A second apply replaces the program (attached programs all have to allow: a stacked one
  // would keep denying /dev/full).
  oci::Resources open_all;
  open_all.devices.push_back({true, "a", std::nullopt, std::nullopt, "rwm"});
  REQUIRE(cg->apply(open_all).ok());
  REQUIRE(::pipe2(res, O_CLOEXEC) == 0);
  Child again([w = res[1]] {
    int e = try_open("/dev/full");
    (void)!::write(w, &e, sizeof e);
    return 0;
  });
  ::close(res[1]);
  REQUIRE(cg->add_process(again.pid).ok());
  again.go();
  int e = -1;
  REQUIRE(::read(res[0], &e, sizeof e) == sizeof e);
  ::close(res[0]);
  CHECK(e == 0);
}

TEST_CASE("a hierarchy root is never used as a container cgroup", "[cgroup]") {
  auto mounts = host_mounts();
  for (const char* p : {"/", "", "/a/../.."}) {
    auto m = CgroupManager::make(mounts, p);
    auto r = m->create();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::Config);
    CHECK_FALSE(m->destroy().ok());
    CHECK(fs::is_dir(mounts.v1.at("memory") + "/process_api"));  // untouched
  }
}

TEST_CASE("an unsupported knob is a Config error naming the OCI field", "[cgroup]") {
  auto mounts = host_mounts();
  CgroupGuard cg(CgroupManager::make(mounts, test_path("unsupported")));
  REQUIRE(cg->create().ok());
  std::string blkio = fs::join(mounts.v1.at("blkio"), test_path("unsupported"));
  if (!fs::exists(fs::join(blkio, "blkio.weight")) && !fs::exists(fs::join(blkio, "blkio.bfq.weight"))) {
    oci::Resources r;
    r.block_io = oci::BlockIoResources{};
    r.block_io->weight = 500;
    auto res = cg->apply(r);
    REQUIRE_FALSE(res.ok());
    CHECK(res.error().kind == ErrorKind::Config);
    CHECK(res.error().message == "linux.resources.blockIO.weight: blkio.weight: not supported on this host");
  }
  oci::Resources u;
  u.unified["memory.high"] = "1000000";  // the unified hierarchy here has no memory controller
  auto res = cg->apply(u);
  REQUIRE_FALSE(res.ok());
  CHECK(res.error().kind == ErrorKind::Config);
  CHECK(res.error().message == "linux.resources.unified.memory.high: memory.high: not supported on this host");

  // A host with v1 only has no place for unified files.
  CgroupMounts v1only = mounts;
  v1only.layout = CgroupLayout::V1;
  v1only.unified.clear();
  auto m = CgroupManager::make(v1only, test_path("unsupported"));
  auto res2 = m->apply(u);
  REQUIRE_FALSE(res2.ok());
  CHECK(res2.error().kind == ErrorKind::Config);
  CHECK(res2.error().message.rfind("linux.resources.unified:", 0) == 0);
}

TEST_CASE("destroy removes leftover child cgroups and waits for exiting processes", "[cgroup]") {
  auto mounts = host_mounts();
  CgroupGuard cg(CgroupManager::make(mounts, test_path("leftover")));
  REQUIRE(cg->create().ok());
  std::string mem = fs::join(mounts.v1.at("memory"), test_path("leftover"));
  REQUIRE(fs::mkdir_p(mem + "/sub/deeper").ok());
  Child child(sleep_forever);
  REQUIRE(cg->add_process(child.pid).ok());
  child.go();
  ::kill(child.pid, SIGKILL);  // not reaped yet: destroy must wait for the cgroup to empty
  auto r = cg->destroy();
  INFO((r ? "" : r.error().message));
  CHECK(r.ok());
  child.wait();
  CHECK(cg->destroy().ok());
  for (const auto& d : cg->dirs()) CHECK_FALSE(fs::exists(d));
  CHECK_FALSE(fs::exists(mem));
}

TEST_CASE("a v2 manager lists, freezes, thaws and accounts through the unified hierarchy", "[cgroup]") {
  CgroupMounts v2;
  v2.layout = CgroupLayout::V2;
  v2.unified = host_mounts().unified;
  CgroupGuard cg(CgroupManager::make(v2, test_path("v2freeze")));
  REQUIRE(cg->create().ok());
  auto* counter = static_cast<std::atomic<uint64_t>*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(counter != MAP_FAILED);
  counter->store(0);
  Child child([counter] {
    for (;;) counter->fetch_add(1);
    return 0;
  });
  REQUIRE(cg->add_process(child.pid).ok());
  child.go();
  CHECK(*cg->pids() == std::vector<pid_t>{child.pid});
  REQUIRE(subprocess_wait_until_counter(counter, 1000));

  REQUIRE(cg->freeze().ok());
  CHECK(*cg->is_frozen());
  auto events = fs::read_file(cg->dirs().at(0) + "/cgroup.events");
  REQUIRE(events.ok());
  CHECK(events->find("frozen 1") != std::string::npos);
  uint64_t before = counter->load();
  ::usleep(50000);
  CHECK(counter->load() == before);
  REQUIRE(cg->thaw().ok());
  CHECK_FALSE(*cg->is_frozen());
  CHECK(subprocess_wait_until_counter(counter, before + 1000));

  auto stats = cg->stats();
  REQUIRE(stats.ok());
  CHECK((*stats)["cpu"]["usage"]["total"].get<uint64_t>() > 0);
  ::munmap(counter, 4096);
}

TEST_CASE("a container joins only the hierarchies its resources need", "[cgroup]") {
  auto mounts = host_mounts();
  auto res = default_resources();
  std::string p = test_path("plan");
  SECTION("the OCI default resources: memory, pids, cpuacct, devices and unified") {
    CgroupGuard cg(CgroupManager::make(mounts, p, &res));
    REQUIRE(cg->create().ok());
    REQUIRE(cg->apply(res).ok());
    CHECK(joined(mounts, p) == std::set<std::string>{"cpuacct", "devices", "memory", "pids"});
    CHECK(fs::is_dir(fs::join(mounts.unified, p)));
    CHECK(cg->dirs().size() == 5);
    CHECK(knob(mounts, "devices", p, "devices.list").find("c 1:3 rwm") != std::string::npos);
  }
  SECTION("cpu limits join cpu, cpus join cpuset, blockIO joins blkio") {
    res.cpu = oci::CpuResources{};
    res.cpu->shares = 256;
    CgroupGuard cg(CgroupManager::make(mounts, p, &res));
    REQUIRE(cg->create().ok());
    CHECK(joined(mounts, p) == std::set<std::string>{"cpu", "cpuacct", "devices", "memory", "pids"});
    REQUIRE(cg->apply(res).ok());
    CHECK(knob(mounts, "cpu", p, "cpu.shares") == "256");
    REQUIRE(cg->destroy().ok());

    res.cpu->shares.reset();
    res.cpu->mems = "0";
    res.block_io = oci::BlockIoResources{};
    res.block_io->weight = 100;
    CgroupGuard cg2(CgroupManager::make(mounts, p, &res));
    REQUIRE(cg2->create().ok());
    CHECK(joined(mounts, p) == std::set<std::string>{"blkio", "cpuacct", "cpuset", "devices", "memory", "pids"});
  }
  SECTION("empty cpu and blockIO objects join nothing") {
    res.cpu = oci::CpuResources{};
    res.block_io = oci::BlockIoResources{};
    res.devices.clear();
    CgroupGuard cg(CgroupManager::make(mounts, p, &res));
    REQUIRE(cg->create().ok());
    REQUIRE(cg->apply(res).ok());
    CHECK(joined(mounts, p) == std::set<std::string>{"cpuacct", "memory", "pids"});
  }
}

TEST_CASE("a manager made with only the path finds the container's hierarchies", "[cgroup]") {
  auto mounts = host_mounts();
  std::string p = test_path("found");
  auto res = default_resources();
  auto creator = CgroupManager::make(mounts, p, &res);
  REQUIRE(creator->create().ok());
  REQUIRE(creator->apply(res).ok());
  auto* counter = shared_counter();
  Child child([counter] {
    for (;;) counter->fetch_add(1);
    return 0;
  });
  REQUIRE(creator->add_process(child.pid).ok());
  child.go();
  REQUIRE(subprocess_wait_until_counter(counter, 1000));

  CgroupGuard later(CgroupManager::make(mounts, p));  // as `envrun delete`, `ps`, `events` do
  CHECK(later->dirs() == creator->dirs());
  REQUIRE(later->pids().ok());
  CHECK(*later->pids() == std::vector<pid_t>{child.pid});
  // pause through one manager, status through another (what `envrun state` does).
  REQUIRE(later->freeze().ok());
  CHECK(*CgroupManager::make(mounts, p)->is_frozen());
  CHECK(*CgroupManager::is_frozen_at(mounts, p));
  uint64_t before = counter->load();
  ::usleep(30000);
  CHECK(counter->load() == before);
  REQUIRE(CgroupManager::make(mounts, p)->thaw().ok());
  CHECK_FALSE(*CgroupManager::is_frozen_at(mounts, p));
  CHECK(subprocess_wait_until_counter(counter, before + 1000));
  auto stats = later->stats();
  REQUIRE(stats.ok());
  CHECK((*stats)["pids"]["current"].get<uint64_t>() == 1);
  CHECK((*stats)["cpu"]["usage"]["total"].get<uint64_t>() > 0);

  // A process added later (exec) goes to the same hierarchies, and only those.
  Child second(sleep_forever);
  REQUIRE(CgroupManager::make(mounts, p)->add_process(second.pid).ok());
  CHECK(in_cgroup(second.pid, "devices", p));
  CHECK(in_cgroup(second.pid, "", p));
  CHECK_FALSE(in_cgroup(second.pid, "cpu", p));
  CHECK(later->pids()->size() == 2);

  // Killed but not reaped: destroy waits for the cgroups to empty, then removes them all.
  ::kill(child.pid, SIGKILL);
  ::kill(second.pid, SIGKILL);
  auto d = later->destroy();
  INFO((d ? "" : d.error().message));
  REQUIRE(d.ok());
  CHECK(joined(mounts, p).empty());
  CHECK_FALSE(fs::exists(fs::join(mounts.unified, p)));
  CHECK(later->destroy().ok());    // idempotent
  CHECK(creator->destroy().ok());  // and the creator removes the parent level it made
  std::string root = "/envrun-test-" + std::to_string(::getpid());
  CHECK(joined(mounts, root).empty());
  CHECK_FALSE(fs::exists(fs::join(mounts.unified, root)));
  auto gone = CgroupManager::is_frozen_at(mounts, p);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().sys_errno == ENOENT);

  // No directory anywhere yet: "all hierarchies a resource could use" (not freezer, systemd).
  auto fresh = CgroupManager::make(mounts, test_path("nothing-yet"));
  CHECK(fresh->dirs().size() == 8);
  for (const auto& dir : fresh->dirs()) {
    CHECK(dir.find("/freezer/") == std::string::npos);
    CHECK(dir.find("/systemd/") == std::string::npos);
  }
  ::munmap(counter, 4096);
}

TEST_CASE("updating a controller the container did not join joins it and moves every process", "[cgroup]") {
  auto mounts = host_mounts();
  std::string p = test_path("late");
  CgroupGuard cg(CgroupManager::make(mounts, p, nullptr));
  REQUIRE(cg->create().ok());
  int res[2];
  REQUIRE(::pipe2(res, O_CLOEXEC) == 0);
  Child child([w = res[1]] {  // two processes: the child and the grandchild it forks
    pid_t k = ::fork();
    if (k == 0) {
      ::pause();
      ::_exit(0);
    }
    (void)!::write(w, &k, sizeof k);
    ::pause();
    ::kill(k, SIGKILL);
    return 0;
  });
  ::close(res[1]);
  REQUIRE(cg->add_process(child.pid).ok());
  child.go();
  pid_t grandchild = -1;
  REQUIRE(::read(res[0], &grandchild, sizeof grandchild) == sizeof grandchild);
  ::close(res[0]);
  std::vector<pid_t> both = {child.pid, grandchild};
  std::sort(both.begin(), both.end());
  auto early = CgroupManager::make(mounts, p);  // made before the join, used after it
  CHECK(joined(mounts, p).count("cpu") == 0);

  oci::Resources quota;
  quota.cpu = oci::CpuResources{};
  quota.cpu->quota = 20000;
  quota.cpu->period = 100000;
  auto r = CgroupManager::make(mounts, p)->apply(quota);  // `envrun update --cpu-quota`
  INFO((r ? "" : r.error().message));
  REQUIRE(r.ok());
  CHECK(knob(mounts, "cpu", p, "cpu.cfs_quota_us") == "20000");
  CHECK(*cgroup_detail::collect_pids(v1_dir(mounts, "cpu", p)) == both);

  // A bad value: the directory made for it goes again and nobody is moved.
  oci::Resources bad;
  bad.cpu = oci::CpuResources{};
  bad.cpu->cpus = "999";
  auto b = CgroupManager::make(mounts, p)->apply(bad);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().kind == ErrorKind::Config);
  CHECK(b.error().message.rfind("linux.resources.cpu.cpus: cpuset.cpus: invalid value", 0) == 0);
  CHECK_FALSE(fs::exists(v1_dir(mounts, "cpuset", p)));

  oci::Resources cpus;
  cpus.cpu = oci::CpuResources{};
  cpus.cpu->cpus = "0";
  REQUIRE(CgroupManager::make(mounts, p)->apply(cpus).ok());
  CHECK(knob(mounts, "cpuset", p, "cpuset.cpus") == "0");
  CHECK_FALSE(knob(mounts, "cpuset", p, "cpuset.mems").empty());
  CHECK(*cgroup_detail::collect_pids(v1_dir(mounts, "cpuset", p)) == both);
  CHECK(joined(mounts, p) == std::set<std::string>{"cpu", "cpuacct", "cpuset", "memory", "pids"});

  // The manager made before the join still puts a new process in the joined hierarchies.
  Child third(sleep_forever);
  REQUIRE(early->add_process(third.pid).ok());
  CHECK(in_cgroup(third.pid, "cpu", p));
  CHECK(in_cgroup(third.pid, "cpuset", p));

  // The creator's destroy also removes what was joined late by others.
  ::kill(third.pid, SIGKILL);
  ::kill(grandchild, SIGKILL);
  ::kill(child.pid, SIGKILL);
  REQUIRE(cg->destroy().ok());
  CHECK(joined(mounts, p).empty());
  CHECK_FALSE(fs::exists(fs::join(mounts.unified, p)));
  remove_test_root(mounts);
}

// Timings per step (printed, never asserted): `unit_cgroup "[cgroup-bench]"`.
TEST_CASE("cgroup manager timings", "[.][cgroup-bench]") {
  using Clock = std::chrono::steady_clock;
  auto mounts = host_mounts();
  auto res = default_resources();
  const char* names[] = {"make", "create", "apply", "add_process", "kill+reap", "destroy"};
  for (bool planned : {false, true}) {
    const int n = 50;
    double total_us[6] = {};
    for (int i = 0; i < n; ++i) {
      std::string p = test_path("bench" + std::to_string(i));
      Child child(sleep_forever);  // blocked on its pipe: timings exclude its first scheduling
      for (int j = 0; j < 10000 && proc::state_letter(child.pid) != 'S'; ++j) ::usleep(100);
      std::unique_ptr<CgroupManager> m;
      std::function<bool()> steps[6] = {
          [&] { return bool(m = planned ? CgroupManager::make(mounts, p, &res) : CgroupManager::make(mounts, p)); },
          [&] { return m->create().ok(); },
          [&] { return m->apply(res).ok(); },
          [&] { return m->add_process(child.pid).ok(); },
          [&] { return ::kill(child.pid, SIGKILL) == 0 && child.wait() != 0; },
          [&] { return m->destroy().ok(); }};
      for (int k = 0; k < 6; ++k) {
        auto t0 = Clock::now();
        REQUIRE(steps[k]());
        total_us[k] += std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      }
    }
    std::printf("%s:\n", planned ? "planned (OCI default devices)" : "all hierarchies (make without a plan)");
    for (int k = 0; k < 6; ++k) std::printf("  %-12s %8.1f us\n", names[k], total_us[k] / n);
  }
}
