// The usage sampler against ground truth: a real cgroup on this host (hybrid: v1 controllers
// plus cgroup2), a child that measures its own CPU time, touches a known amount of memory,
// forks short-lived children, holds a known number of fds and moves a known number of bytes.
// Also: a v2 directory and a v1 cpuacct.stat imitated with plain files (same pread path),
// control pages (good and bad), a removed cgroup, and the cost of one sample (printed).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstddef>

#include "billing/sampler.hpp"
#include "intercept/control.h"
#include "tests/unit/cgroup_test_support.hpp"

using namespace envrun_cgroup_test;
using namespace envrun::billing;

namespace {

constexpr size_t kTouched = 64u << 20;
constexpr size_t kWritten = 1u << 20;
constexpr size_t kRead = 256u << 10;
constexpr int kExtraFds = 10;
constexpr int kForks = 5;

struct Report {
  int64_t cpu_ns = 0;  // CLOCK_PROCESS_CPUTIME_ID of the child at the end of its work
};

int64_t cpu_now_ns() {
  struct timespec ts;
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The child's work: burn ~300 ms of CPU, touch 64 MiB, fork 5 children that exit at once,
// open 10 more fds, write 1 MiB to /dev/null and read 256 KiB from /dev/zero; report its CPU
// time on `report_w` (exactly sizeof(Report) bytes written), then wait on `exit_r` holding
// the memory and the fds.
int workload(int report_w, int exit_r) {
  int64_t start = cpu_now_ns();
  volatile uint64_t spin = 0;
  while (cpu_now_ns() - start < 300'000'000) spin = spin + 1;
  auto* mem = static_cast<volatile char*>(::mmap(nullptr, kTouched, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mem == MAP_FAILED) return 10;
  for (size_t i = 0; i < kTouched; i += 4096) mem[i] = 1;
  pid_t kids[kForks];
  for (auto& k : kids)
    if ((k = ::fork()) == 0) ::_exit(0);
  for (pid_t k : kids) ::waitpid(k, nullptr, 0);
  for (int i = 0; i < kExtraFds; ++i)
    if (::open("/dev/null", O_RDONLY) < 0) return 11;
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  int zero_fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  static char buf[64 << 10];
  for (size_t done = 0; done < kWritten; done += sizeof buf)
    if (::write(null_fd, buf, sizeof buf) != ssize_t(sizeof buf)) return 12;
  for (size_t done = 0; done < kRead; done += sizeof buf)
    if (::read(zero_fd, buf, sizeof buf) != ssize_t(sizeof buf)) return 13;
  Report rep{cpu_now_ns()};
  if (::write(report_w, &rep, sizeof rep) != ssize_t(sizeof rep)) return 14;
  char c;
  (void)!::read(exit_r, &c, 1);
  return 0;
}

CgroupHierarchies hierarchies(const CgroupMounts& m) { return CgroupHierarchies{m.v1, m.unified}; }

double val(const Reading& r, Metric m) {
  INFO("metric " << info(m).name);
  REQUIRE(r[m].has_value());
  return r[m]->value;
}

std::optional<double> mark(const Reading& r, Metric m) {
  REQUIRE(r[m].has_value());
  return r[m]->high_water;
}

size_t fd_entries(pid_t pid) { return fs::list_dir("/proc/" + std::to_string(pid) + "/fd").size(); }

// A temporary directory removed at scope end.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/envrun-sampler-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { (void)fs::remove_tree(path); }
  void put(const std::string& rel, const std::string& text) const {
    REQUIRE(fs::mkdir_p(fs::join(path, rel.substr(0, rel.rfind('/')))).ok());
    REQUIRE(fs::write_file(fs::join(path, rel), text, O_CREAT | O_TRUNC).ok());
  }
};

}  // namespace

TEST_CASE("a real cgroup: CPU, memory, processes, threads, fds and io bytes match the ground truth", "[billing][sampler]") {
  auto mounts = host_mounts();
  std::string p = test_path("sampler");
  CgroupGuard cg(CgroupManager::make(mounts, p, nullptr));
  REQUIRE(cg->create().ok());

  int report[2], exit_pipe[2];
  REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(exit_pipe, O_CLOEXEC) == 0);
  Child child([&] { return workload(report[1], exit_pipe[0]); });
  ::close(report[1]);
  ::close(exit_pipe[0]);
  REQUIRE(cg->add_process(child.pid).ok());

  auto sampler = InstanceSampler::open(SamplerConfig{hierarchies(mounts), p, "", true});
  INFO((sampler ? "" : sampler.error().message));
  REQUIRE(sampler.ok());
  CHECK_FALSE(sampler->has_control_page());
  auto before = sampler->sample();
  REQUIRE(before.ok());
  CHECK(val(*before, Metric::ProcessesPeak) == 1);

  child.go();
  Report rep;
  REQUIRE(::read(report[0], &rep, sizeof rep) == ssize_t(sizeof rep));
  auto r = sampler->sample();
  REQUIRE(r.ok());

  double cpu = val(*r, Metric::CpuUserSeconds) + val(*r, Metric::CpuSystemSeconds);
  double measured = double(rep.cpu_ns) / 1e9;
  INFO("cgroup CPU " << cpu << " s, the child measured " << measured << " s");
  CHECK(std::abs(cpu - measured) <= 0.1 * measured + 0.02);

  double mem_peak = mark(*r, Metric::MemoryPeakBytes).value_or(0);
  INFO("memory now " << val(*r, Metric::MemoryPeakBytes) << ", peak " << mem_peak);
  CHECK(mem_peak >= double(kTouched));
  CHECK(mem_peak < double(kTouched + (32u << 20)));
  CHECK(val(*r, Metric::MemoryPeakBytes) >= double(kTouched));

  // The 5 children exited (and were reaped) before the sample: one process, one task now;
  // pids.peak saw the child and its 5 children at once (reaped only after all were forked).
  CHECK(val(*r, Metric::ProcessesPeak) == 1);
  CHECK(val(*r, Metric::ThreadsPeak) == 1);
  CHECK(mark(*r, Metric::ThreadsPeak) == 1 + kForks);

  CHECK(val(*r, Metric::OpenFilesPeak) == double(fd_entries(child.pid)));
  CHECK(val(*r, Metric::OpenFilesPeak) >= 3 + kExtraFds);

  // No control page: io from /proc/PID/io. wchar: 1 MiB + the report; rchar: 256 KiB + the go byte.
  CHECK(val(*r, Metric::IoBytesWritten) == double(kWritten + sizeof(Report)));
  CHECK(val(*r, Metric::IoBytesRead) == double(kRead + 1));
  CHECK_FALSE(r->values[size_t(Metric::FilesOpened)].has_value());
  CHECK(r->realtime_ms >= before->realtime_ms);
  CHECK(r->monotonic_ns > before->monotonic_ns);

  // The child exits: the cgroup keeps its CPU and its peak; io keeps its last sample.
  REQUIRE(::write(exit_pipe[1], "x", 1) == 1);
  CHECK(WIFEXITED(child.wait()));
  auto after = sampler->sample();
  REQUIRE(after.ok());
  CHECK(val(*after, Metric::CpuUserSeconds) + val(*after, Metric::CpuSystemSeconds) >= cpu);
  CHECK(mark(*after, Metric::MemoryPeakBytes) == mem_peak);
  CHECK(val(*after, Metric::ProcessesPeak) == 0);
  CHECK(val(*after, Metric::OpenFilesPeak) == 0);
  CHECK(val(*after, Metric::IoBytesWritten) == double(kWritten + sizeof(Report)));

  // Cost of one sample with the files open (printed, not asserted).
  constexpr int kRounds = 2000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) REQUIRE(sampler->sample().ok());
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  std::printf("sampler: one sample of an empty v1 cgroup (%zu files open): %lld ns\n",
              sampler->cgroup().files().size(), (long long)(ns / kRounds));

  ::close(report[0]);
  ::close(exit_pipe[1]);
  REQUIRE(cg->destroy().ok());
  auto gone = sampler->sample();
  REQUIRE_FALSE(gone.ok());
  INFO(gone.error().message);
  CHECK(gone.error().kind == ErrorKind::NotFound);
  auto reopen = InstanceSampler::open(SamplerConfig{hierarchies(mounts), p, "", true});
  REQUIRE_FALSE(reopen.ok());
  CHECK(reopen.error().kind == ErrorKind::NotFound);
  remove_test_root(mounts);
}

TEST_CASE("the cost of one sample of a live process, with and without /proc", "[billing][sampler]") {
  auto mounts = host_mounts();
  std::string p = test_path("cost");
  CgroupGuard cg(CgroupManager::make(mounts, p, nullptr));
  REQUIRE(cg->create().ok());
  Child child([] { return sleep_forever(); });
  REQUIRE(cg->add_process(child.pid).ok());
  child.go();
  for (bool per_process : {true, false}) {
    auto sampler = InstanceSampler::open(SamplerConfig{hierarchies(mounts), p, "", per_process});
    REQUIRE(sampler.ok());
    REQUIRE(sampler->sample().ok());
    constexpr int kRounds = 2000;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kRounds; ++i) REQUIRE(sampler->sample().ok());
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    std::printf("sampler: one sample of a v1 cgroup with 1 process, per_process=%d: %lld ns\n", int(per_process),
                (long long)(ns / kRounds));
  }
  remove_test_root(mounts);
}

TEST_CASE("the unified directory alone: CPU from cpu.stat, threads from /proc/PID/status", "[billing][sampler]") {
  auto mounts = host_mounts();
  std::string p = test_path("unified");
  CgroupGuard cg(CgroupManager::make(mounts, p, nullptr));
  REQUIRE(cg->create().ok());
  int report[2], exit_pipe[2];
  REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(exit_pipe, O_CLOEXEC) == 0);
  Child child([&] { return workload(report[1], exit_pipe[0]); });
  ::close(report[1]);
  ::close(exit_pipe[0]);
  REQUIRE(cg->add_process(child.pid).ok());

  // Only the cgroup2 mount: like a v2 host whose memory and pids controllers are not enabled.
  auto sampler = InstanceSampler::open(SamplerConfig{CgroupHierarchies{{}, mounts.unified}, p, "", true});
  REQUIRE(sampler.ok());
  child.go();
  Report rep;
  REQUIRE(::read(report[0], &rep, sizeof rep) == ssize_t(sizeof rep));
  auto r = sampler->sample();
  REQUIRE(r.ok());
  double cpu = val(*r, Metric::CpuUserSeconds) + val(*r, Metric::CpuSystemSeconds);
  double measured = double(rep.cpu_ns) / 1e9;
  INFO("cpu.stat " << cpu << " s, the child measured " << measured << " s");
  CHECK(std::abs(cpu - measured) <= 0.1 * measured + 0.02);
  CHECK(val(*r, Metric::ThreadsPeak) == 1);  // from "Threads:"
  CHECK_FALSE(mark(*r, Metric::ThreadsPeak).has_value());
  CHECK_FALSE(r->values[size_t(Metric::MemoryPeakBytes)].has_value());
  CHECK(val(*r, Metric::ProcessesPeak) == 1);
  REQUIRE(::write(exit_pipe[1], "x", 1) == 1);
  CHECK(WIFEXITED(child.wait()));
  ::close(report[0]);
  ::close(exit_pipe[1]);
  remove_test_root(mounts);
}

TEST_CASE("a v2 directory and a v1 cpuacct.stat read through the same held fds", "[billing][sampler]") {
  TempDir t;
  t.put("cg2/i/cpu.stat", "usage_usec 3500000\nuser_usec 2500000\nsystem_usec 1000000\nnice_usec 0\n");
  t.put("cg2/i/memory.current", "1048576\n");
  t.put("cg2/i/memory.peak", "2097152\n");
  t.put("cg2/i/pids.current", "3\n");
  t.put("cg2/i/pids.peak", "7\n");
  t.put("cg2/i/cgroup.procs", std::to_string(::getpid()) + "\n");
  auto s = InstanceSampler::open(SamplerConfig{CgroupHierarchies{{}, t.path + "/cg2"}, "/i", "", true});
  INFO((s ? "" : s.error().message));
  REQUIRE(s.ok());
  CHECK(s->cgroup().files().size() == 6);
  auto r = s->sample();
  REQUIRE(r.ok());
  CHECK(val(*r, Metric::CpuUserSeconds) == 2.5);
  CHECK(val(*r, Metric::CpuSystemSeconds) == 1.0);
  CHECK(val(*r, Metric::MemoryPeakBytes) == 1048576);
  CHECK(mark(*r, Metric::MemoryPeakBytes) == 2097152);
  CHECK(val(*r, Metric::ThreadsPeak) == 3);
  CHECK(mark(*r, Metric::ThreadsPeak) == 7);
  CHECK(val(*r, Metric::ProcessesPeak) == 1);

  // Rewritten in place (same inodes): the held fds see the new text, longer than before.
  t.put("cg2/i/cpu.stat", "usage_usec 13500000\nuser_usec 12500000\nsystem_usec 1000000\nnice_usec 0\n");
  t.put("cg2/i/cgroup.procs", std::to_string(::getpid()) + "\n999999999\n");  // a pid that is no process
  auto r2 = s->sample();
  REQUIRE(r2.ok());
  CHECK(val(*r2, Metric::CpuUserSeconds) == 12.5);
  CHECK(val(*r2, Metric::ProcessesPeak) == 2);  // listed; the /proc totals skip the missing one
  // Our own fds (the sampler's included: the first sample opened /proc/self/io after counting).
  CHECK(val(*r2, Metric::OpenFilesPeak) == double(fd_entries(::getpid()) - 1));  // - list_dir's own fd

  // An old v2 kernel: no memory.peak, no high-water mark.
  TempDir old;
  old.put("cg2/i/cpu.stat", "user_usec 1\nsystem_usec 2\n");
  old.put("cg2/i/memory.current", "4096\n");
  auto so = InstanceSampler::open(SamplerConfig{CgroupHierarchies{{}, old.path + "/cg2"}, "/i", "", false});
  REQUIRE(so.ok());
  auto ro = so->sample();
  REQUIRE(ro.ok());
  CHECK(val(*ro, Metric::MemoryPeakBytes) == 4096);
  CHECK_FALSE(mark(*ro, Metric::MemoryPeakBytes).has_value());
  CHECK_FALSE(ro->values[size_t(Metric::ThreadsPeak)].has_value());
  CHECK_FALSE(ro->values[size_t(Metric::ProcessesPeak)].has_value());  // no cgroup.procs
  CHECK_FALSE(ro->values[size_t(Metric::OpenFilesPeak)].has_value());   // per_process off

  // v1 without cpuacct.usage_user/_sys: cpuacct.stat in USER_HZ.
  TempDir v1;
  v1.put("cpuacct/i/cpuacct.stat", "user 250\nsystem 50\n");
  auto s1 = InstanceSampler::open(SamplerConfig{CgroupHierarchies{{{"cpuacct", v1.path + "/cpuacct"}}, ""}, "/i", "", false});
  REQUIRE(s1.ok());
  auto r1 = s1->sample();
  REQUIRE(r1.ok());
  long hz = ::sysconf(_SC_CLK_TCK);
  CHECK(val(*r1, Metric::CpuUserSeconds) == double(250 * (1'000'000'000 / hz)) / 1e9);
  CHECK(val(*r1, Metric::CpuSystemSeconds) == double(50 * (1'000'000'000 / hz)) / 1e9);

  // Unreadable content names the file.
  t.put("cg2/i/memory.current", "lots\n");
  auto bad = s->sample();
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "cgroup /i: " + t.path + "/cg2/i/memory.current: not a number: \"lots\"");
  // A cgroup in no hierarchy.
  auto none = InstanceSampler::open(SamplerConfig{CgroupHierarchies{{}, t.path + "/cg2"}, "/nope", "", true});
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().kind == ErrorKind::NotFound);
  CHECK(none.error().message == "cgroup /nope: not found in any hierarchy");
}

namespace {

// A control page file as the runtime creates it, mapped read-write here to play the library.
struct FakePage {
  std::string path;
  ictl::ControlPage* page = nullptr;
  explicit FakePage(const std::string& dir, size_t size = sizeof(ictl::ControlPage)) : path(dir + "/intercept.ctl") {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    REQUIRE(fd.valid());
    REQUIRE(::ftruncate(fd.get(), off_t(size)) == 0);
    void* p = ::mmap(nullptr, sizeof(ictl::ControlPage), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    REQUIRE(p != MAP_FAILED);
    page = static_cast<ictl::ControlPage*>(p);
    if (size >= 16) {
      std::memcpy(page->magic, ictl::kMagic, sizeof ictl::kMagic);
      page->version = ictl::kVersion;
      page->size = sizeof(ictl::ControlPage);
    }
  }
  ~FakePage() { ::munmap(page, sizeof(ictl::ControlPage)); }
};

std::string open_error(const std::string& path) {
  auto v = ControlPageView::open(path);
  REQUIRE_FALSE(v.ok());
  return v.error().message;
}

}  // namespace

TEST_CASE("control page counters: mapped once, seen live", "[billing][sampler]") {
  TempDir t;
  t.put("cg2/i/cpu.stat", "user_usec 0\nsystem_usec 0\n");
  FakePage fp(t.path);
  fp.page->counters[ictl::kOpens] = 11;
  fp.page->counters[ictl::kBytesRead] = 4096;
  fp.page->counters[ictl::kBytesWritten] = 8192;
  fp.page->counters[ictl::kAccepts] = 5;
  fp.page->counters[ictl::kConnectionsOpen] = 2;
  fp.page->counters[ictl::kConnectionsPeak] = 4;
  fp.page->counters[ictl::kProcessesStarted] = 6;
  fp.page->counters[ictl::kNetBytesReceived] = 1000;
  fp.page->counters[ictl::kNetBytesSent] = 2000;
  fp.page->counters[ictl::kTransactions] = 12;
  fp.page->counters[ictl::kDistinctPeers] = 3;
  auto s = InstanceSampler::open(SamplerConfig{CgroupHierarchies{{}, t.path + "/cg2"}, "/i", fp.path, true});
  INFO((s ? "" : s.error().message));
  REQUIRE(s.ok());
  CHECK(s->has_control_page());
  auto r = s->sample();
  REQUIRE(r.ok());
  CHECK(val(*r, Metric::FilesOpened) == 11);
  CHECK(val(*r, Metric::IoBytesRead) == 4096);  // the page, not /proc/PID/io
  CHECK(val(*r, Metric::IoBytesWritten) == 8192);
  CHECK(val(*r, Metric::Connections) == 5);
  CHECK(val(*r, Metric::ConnectionsPeak) == 2);
  CHECK(mark(*r, Metric::ConnectionsPeak) == 4);
  CHECK(val(*r, Metric::ProcessesStarted) == 6);
  CHECK(val(*r, Metric::NetBytesReceived) == 1000);
  CHECK(val(*r, Metric::NetBytesSent) == 2000);
  CHECK(val(*r, Metric::Transactions) == 12);
  CHECK(val(*r, Metric::DistinctPeers) == 3);

  fp.page->counters[ictl::kOpens].fetch_add(3);  // the library counting, after the mapping
  auto r2 = s->sample();
  REQUIRE(r2.ok());
  CHECK(val(*r2, Metric::FilesOpened) == 14);
}

TEST_CASE("bad control pages are refused naming what is wrong", "[billing][sampler]") {
  TempDir t;
  auto missing = ControlPageView::open(t.path + "/none.ctl");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::NotFound);

  {
    FakePage fp(t.path);
    fp.page->magic[0] = 'X';
    CHECK(open_error(fp.path) == "control page " + fp.path + ": magic: not an envrun control page");
  }
  {
    FakePage fp(t.path);
    fp.page->version = ictl::kVersion + 1;
    CHECK(open_error(fp.path) == "control page " + fp.path + ": version: " + std::to_string(ictl::kVersion + 1) +
                                     ", expected " + std::to_string(ictl::kVersion));
  }
  {
    FakePage fp(t.path);
    fp.page->size = 64;
    CHECK(open_error(fp.path).find(": size: the header says 64 bytes") != std::string::npos);
  }
  {
    FakePage fp(t.path, 100);  // truncated file
    CHECK(open_error(fp.path).find(": size: 100 bytes, too small for the counters") != std::string::npos);
  }
  FakePage good(t.path);
  auto v = ControlPageView::open(good.path);
  REQUIRE(v.ok());
  good.page->counters[ictl::kCounterCount - 1] = 9;
  CHECK(v->counter(ictl::kCounterCount - 1) == 9);
  CHECK(v->counter(ictl::kMaxCounters) == 0);  // out of range reads as 0
}
