// envrun_infect against real children: seize/interrupt, registers (general and
// xstate), remote syscalls, memory, signals, and the thread's own state afterwards.
// Each child is forked from this test, so its globals sit at the same addresses as
// ours: the test reads them in the child with read_mem.
#include <cpuid.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ckpt/infect/infect.hpp"
#include "kernel/fs.hpp"
#include "kernel/process.hpp"

using namespace envrun;
using namespace envrun::infect;

namespace {

volatile uint64_t g_counter = 0;
volatile sig_atomic_t g_usr1 = 0;
int g_report_fd = -1;
alignas(16) volatile uint8_t g_seen_xmm0[16];

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    r = fds[0], w = fds[1];
  }
  ~Pipe() {
    ::close(r);
    ::close(w);
  }
};

// A forked child, killed and reaped (with every thread still traced by us) at scope end.
struct Child {
  pid_t pid = -1;
  explicit Child(std::function<void()> body) {
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      body();
      ::_exit(0);
    }
  }
  ~Child() {
    ::kill(pid, SIGKILL);
    for (;;) {  // traced threads first (the leader is reported last), then the leader
      int st = 0;
      pid_t r = ::waitpid(-1, &st, __WALL);
      if (r == pid || r < 0) break;
    }
  }
};

bool read_timeout(int fd, void* buf, size_t n, int ms = 5000) {
  size_t got = 0;
  while (got < n) {
    struct pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, ms) != 1) return false;
    ssize_t r = ::read(fd, static_cast<char*>(buf) + got, n - got);
    if (r <= 0) return false;
    got += size_t(r);
  }
  return true;
}

template <class T>
T peek(pid_t pid, const volatile T& var) {
  T v{};
  auto r = read_mem(pid, uint64_t(uintptr_t(&var)), std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), sizeof v));
  REQUIRE(r.ok());
  return v;
}

// Polls until pred() or about 5 s.
bool eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// The syscall a (blocked) thread is in, from /proc/PID/task/TID/syscall; -1 if running.
long current_syscall(pid_t pid, pid_t tid) {
  auto t = fs::read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
  if (!t || t->rfind("running", 0) == 0) return -1;
  return std::strtol(t->c_str(), nullptr, 10);
}

std::vector<pid_t> tids_of(pid_t pid) {
  std::vector<pid_t> out;
  for (auto& name : fs::list_dir("/proc/" + std::to_string(pid) + "/task")) out.push_back(pid_t(std::stoi(name)));
  return out;
}

void stop_all(const std::vector<pid_t>& tids) {
  for (pid_t t : tids) REQUIRE(seize(t).ok());
  for (pid_t t : tids) {
    auto r = interrupt(t);
    INFO((r ? "" : r.error().message));
    REQUIRE(r.ok());
  }
}

[[noreturn]] void loop_forever() {
  for (;;) g_counter = g_counter + 1;
}

extern "C" [[noreturn]] void jump_target() {
  char c = 'J';
  (void)!::write(g_report_fd, &c, 1);
  ::_exit(42);
}

void on_usr1(int) { g_usr1 = g_usr1 + 1; }

void* thread_body(void* arg) {
  pid_t tid = pid_t(::syscall(SYS_gettid));
  (void)!::write(*static_cast<int*>(arg), &tid, sizeof tid);
  for (;;) ::usleep(1000);
}

// A child with `extra` threads besides the main one; returns every tid (main first).
std::vector<pid_t> spawn_threads(Child*& child, Pipe& p, int extra) {
  child = new Child([&] {
    static int fd = p.w;
    for (int i = 0; i < extra; ++i) {
      pthread_t t;
      pthread_create(&t, nullptr, thread_body, &fd);
    }
    loop_forever();
  });
  std::vector<pid_t> tids{child->pid};
  for (int i = 0; i < extra; ++i) {
    pid_t t = 0;
    REQUIRE(read_timeout(p.r, &t, sizeof t));
    tids.push_back(t);
  }
  return tids;
}

}  // namespace

TEST_CASE("seize + interrupt stop a looping child; detach lets it run on", "[infect]") {
  Child c([] { loop_forever(); });
  REQUIRE(eventually([&] { return peek(c.pid, g_counter) > 0; }));
  REQUIRE(seize(c.pid).ok());
  REQUIRE(interrupt(c.pid).ok());
  uint64_t a = peek(c.pid, g_counter);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CHECK(peek(c.pid, g_counter) == a);  // stopped
  REQUIRE(detach(c.pid).ok());
  CHECK(eventually([&] { return peek(c.pid, g_counter) != a; }));
}

TEST_CASE("get_regs/set_regs round trip, and a changed rip is where the thread goes", "[infect]") {
  Pipe p;
  g_report_fd = p.w;
  Child c([] { loop_forever(); });
  stop_all({c.pid});
  auto regs = get_regs(c.pid);
  REQUIRE(regs.ok());
  CHECK(regs->gp.fs_base != 0);
  CHECK(regs->xstate.size() >= 576);  // legacy area + XSAVE header at least
  REQUIRE(set_regs(c.pid, *regs).ok());
  auto again = get_regs(c.pid);
  REQUIRE(again.ok());
  CHECK(std::memcmp(&again->gp, &regs->gp, sizeof regs->gp) == 0);
  CHECK(again->xstate == regs->xstate);

  ThreadRegs moved = *regs;
  moved.gp.rip = uint64_t(uintptr_t(&jump_target));
  moved.gp.rsp = ((regs->gp.rsp - 512) & ~uint64_t(15)) - 8;  // as after a call
  REQUIRE(set_regs(c.pid, moved).ok());
  REQUIRE(detach(c.pid).ok());
  char got = 0;
  REQUIRE(read_timeout(p.r, &got, 1));
  CHECK(got == 'J');
  int st = 0;
  REQUIRE(::waitpid(c.pid, &st, 0) == c.pid);
  CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 42));
}

TEST_CASE("remote getpid/gettid in every thread of a child with 3 threads", "[infect]") {
  Pipe p;
  Child* child = nullptr;
  auto tids = spawn_threads(child, p, 3);
  std::unique_ptr<Child> guard(child);
  auto listed = tids_of(child->pid);
  REQUIRE(std::set<pid_t>(listed.begin(), listed.end()) == std::set<pid_t>(tids.begin(), tids.end()));
  stop_all(tids);
  for (pid_t t : tids) {
    auto r = Remote::open(t);
    INFO((r ? "" : r.error().message));
    REQUIRE(r.ok());
    CHECK(r->syscall(SYS_getpid).value_or(-1) == child->pid);
    CHECK(r->syscall(SYS_gettid).value_or(-1) == t);
    REQUIRE(r->close().ok());
  }
  for (pid_t t : tids) REQUIRE(detach(t).ok());
  uint64_t a = peek(child->pid, g_counter);
  CHECK(eventually([&] { return peek(child->pid, g_counter) != a; }));
}

TEST_CASE("remote mmap/mprotect/munmap with write_mem and read_mem", "[infect]") {
  Child c([] { loop_forever(); });
  stop_all({c.pid});
  auto r = Remote::open(c.pid);
  REQUIRE(r.ok());
  const size_t len = 8 << 20;  // several 1 MiB chunks
  long addr = r->syscall(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, uint64_t(-1), 0).value_or(-1);
  REQUIRE(addr > 0);
  std::vector<uint8_t> data(len), back(len);
  for (size_t i = 0; i < len; ++i) data[i] = uint8_t(i * 7 + 3);
  REQUIRE(write_mem(c.pid, addr, data).ok());
  REQUIRE(read_mem(c.pid, addr, back).ok());
  CHECK(back == data);

  // A read-only page and a PROT_NONE page in the middle of the range.
  const uint64_t ro = addr + (3 << 20) + 4096 * 5, none = addr + (5 << 20) + 4096 * 2;
  CHECK(r->syscall(SYS_mprotect, ro, 4096, PROT_READ).value_or(-1) == 0);
  CHECK(r->syscall(SYS_mprotect, none, 4096, PROT_NONE).value_or(-1) == 0);
  uint8_t probe = 1;
  struct iovec l = {&probe, 1}, rem = {reinterpret_cast<void*>(ro), 1};
  CHECK(::process_vm_writev(c.pid, &l, 1, &rem, 1, 0) == -1);  // the fast path refuses...
  for (auto& b : data) b = uint8_t(~b);
  auto w = write_mem(c.pid, addr, data);  // ...write_mem still writes
  INFO((w ? "" : w.error().message));
  REQUIRE(w.ok());
  std::fill(back.begin(), back.end(), 0);
  REQUIRE(read_mem(c.pid, addr, back).ok());
  CHECK(back == data);

  CHECK(r->syscall(SYS_munmap, addr, len).value_or(-1) == 0);
  auto gone = read_mem(c.pid, addr, std::span<uint8_t>(back.data(), 16));
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().message.find("pid " + std::to_string(c.pid)) != std::string::npos);
  REQUIRE(r->close().ok());
}

TEST_CASE("scratch grows and keeps its bytes; a remote write reaches our pipe", "[infect]") {
  Pipe p;
  g_report_fd = p.w;
  Child c([] { loop_forever(); });
  stop_all({c.pid});
  uint64_t first = 0;
  {
    auto r = Remote::open(c.pid);
    REQUIRE(r.ok());
    auto at = r->put_string(0, "hello from inside");
    REQUIRE(at.ok());
    first = *at;
    CHECK(r->syscall(SYS_write, uint64_t(g_report_fd), *at, 17).value_or(-1) == 17);
    char buf[18] = {};
    REQUIRE(read_timeout(p.r, buf, 17));
    CHECK(std::string(buf) == "hello from inside");
    auto big = r->scratch(5 * 4096 + 1);  // remapped, maybe moved
    REQUIRE(big.ok());
    char kept[18] = {};
    REQUIRE(read_mem(c.pid, *big, std::span<uint8_t>(reinterpret_cast<uint8_t*>(kept), 17)).ok());
    CHECK(std::string(kept) == "hello from inside");
    auto far = r->put(6 * 4096, std::vector<uint8_t>{1, 2, 3});  // grows again
    REQUIRE(far.ok());
    first = *far;
  }  // destructor: scratch unmapped
  uint8_t b = 0;
  CHECK_FALSE(read_mem(c.pid, first, std::span<uint8_t>(&b, 1)).ok());
}

TEST_CASE("find_syscall_insn in the vdso; Remote runs from a given place and moves", "[infect]") {
  Child c([] { loop_forever(); });
  stop_all({c.pid});
  uint64_t vs = 0, ve = 0;
  std::ifstream maps("/proc/" + std::to_string(c.pid) + "/maps");
  for (std::string line; std::getline(maps, line);)
    if (line.find("[vdso]") != std::string::npos) std::sscanf(line.c_str(), "%lx-%lx", &vs, &ve);
  REQUIRE(ve > vs);
  auto at = find_syscall_insn(c.pid, vs, ve);
  REQUIRE(at.ok());
  CHECK((*at >= vs && *at + 2 <= ve));
  uint8_t b[2] = {};
  REQUIRE(read_mem(c.pid, *at, b).ok());
  CHECK((b[0] == 0x0f && b[1] == 0x05));
  auto none = find_syscall_insn(c.pid, *at + 2, *at + 2);  // empty range
  CHECK_FALSE(none.ok());

  auto r = Remote::open(c.pid, *at);
  REQUIRE(r.ok());
  CHECK(r->syscall(SYS_getpid).value_or(-1) == c.pid);
  // Our own page with 0f 05 in it, made executable; the Remote moves there.
  long page = r->syscall(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, uint64_t(-1), 0).value_or(-1);
  REQUIRE(page > 0);
  const uint8_t insn[2] = {0x0f, 0x05};
  REQUIRE(write_mem(c.pid, page + 100, insn).ok());
  CHECK(r->syscall(SYS_mprotect, page, 4096, PROT_READ | PROT_EXEC).value_or(-1) == 0);
  CHECK_FALSE(r->use_syscall_at(page + 101).ok());  // not a syscall instruction
  REQUIRE(r->use_syscall_at(page + 100).ok());
  CHECK(r->syscall(SYS_gettid).value_or(-1) == c.pid);
  auto regs_during = get_regs(c.pid);
  REQUIRE(regs_during.ok());
  CHECK(regs_during->gp.rip == uint64_t(page + 102));  // the exit stop after our insn
  CHECK_FALSE(Remote::open(c.pid, *at + 1).ok());
}

// The child sits in read() of an empty pipe when seized; after remote syscalls, close
// and detach, its read must complete normally (restarted by the kernel), and a signal
// sent meanwhile must wait until detach, then follow SA_RESTART or EINTR semantics.
namespace {
struct ReadReport {
  long ret;
  int err;
  char byte;
  int usr1;
};
// resume_with_cont: PTRACE_CONT instead of detach (the thread stays traced): unlike
// PTRACE_DETACH it does not force a pass through the kernel's signal code on resume.
void run_read_case(int handler_flags, bool send_usr1, bool resume_with_cont = false) {
  Pipe in, out;
  g_usr1 = 0;
  Child c([&] {
    if (handler_flags >= 0) {
      struct sigaction sa = {};
      sa.sa_handler = on_usr1;
      sa.sa_flags = handler_flags;
      ::sigaction(SIGUSR1, &sa, nullptr);
    }
    ReadReport rep = {};
    char ch = 0;
    rep.ret = ::read(in.r, &ch, 1);
    rep.err = errno;
    rep.byte = ch;
    rep.usr1 = g_usr1;
    (void)!::write(out.w, &rep, sizeof rep);
  });
  REQUIRE(eventually([&] { return current_syscall(c.pid, c.pid) == SYS_read; }));
  stop_all({c.pid});
  auto before = get_regs(c.pid);
  REQUIRE(before.ok());
  {
    auto r = Remote::open(c.pid);
    REQUIRE(r.ok());
    CHECK(r->syscall(SYS_getpid).value_or(-1) == c.pid);
    if (send_usr1) REQUIRE(::kill(c.pid, SIGUSR1) == 0);
    CHECK(r->syscall(SYS_getppid).value_or(-1) == ::getpid());
    long m = r->syscall(SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, uint64_t(-1), 0).value_or(-1);
    CHECK(r->syscall(SYS_munmap, m, 4096).value_or(-1) == 0);
    CHECK(peek(c.pid, g_usr1) == 0);
    REQUIRE(r->close().ok());
  }
  auto after = get_regs(c.pid);
  REQUIRE(after.ok());
  CHECK(std::memcmp(&after->gp, &before->gp, sizeof before->gp) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(peek(c.pid, g_usr1) == 0);  // not handled while we hold the thread
  if (resume_with_cont)
    REQUIRE(::ptrace(PTRACE_CONT, c.pid, nullptr, nullptr) == 0);
  else
    REQUIRE(detach(c.pid).ok());
  // (in the EINTR case the child reports and exits at once: nothing to poll)
  if (send_usr1 && (handler_flags & SA_RESTART)) CHECK(eventually([&] { return peek(c.pid, g_usr1) == 1; }));
  ReadReport rep = {};
  if (send_usr1 && !(handler_flags & SA_RESTART)) {
    REQUIRE(read_timeout(out.r, &rep, sizeof rep));
    CHECK(rep.ret == -1);
    CHECK(rep.err == EINTR);
  } else {
    REQUIRE(::write(in.w, "x", 1) == 1);
    REQUIRE(read_timeout(out.r, &rep, sizeof rep));
    INFO("read returned " << rep.ret << ", errno " << rep.err);
    CHECK(rep.ret == 1);
    CHECK(rep.byte == 'x');
  }
  CHECK(rep.usr1 == (send_usr1 ? 1 : 0));
}
}  // namespace

TEST_CASE("a read() the child was blocked in completes after remote syscalls", "[infect]") {
  SECTION("resumed by detach") { run_read_case(-1, false); }
  SECTION("resumed by PTRACE_CONT") { run_read_case(-1, false, true); }
}

TEST_CASE("SIGUSR1 during remote syscalls is handled after detach (SA_RESTART: read restarts)", "[infect]") {
  run_read_case(SA_RESTART, true);
}

TEST_CASE("SIGUSR1 during remote syscalls is handled after detach (no SA_RESTART: EINTR)", "[infect]") {
  run_read_case(0, true);
}

TEST_CASE("a signal already being delivered when interrupted is kept: handler frame set, run after detach", "[infect]") {
  g_usr1 = 0;
  Pipe ready;
  Child c([&] {
    struct sigaction sa = {};
    sa.sa_handler = on_usr1;
    ::sigaction(SIGUSR1, &sa, nullptr);
    (void)!::write(ready.w, "r", 1);
    loop_forever();
  });
  char b = 0;
  REQUIRE(read_timeout(ready.r, &b, 1));
  REQUIRE(seize(c.pid).ok());
  REQUIRE(::kill(c.pid, SIGUSR1) == 0);
  // The seized child dequeues SIGUSR1 and waits for us in a signal-delivery-stop.
  siginfo_t si = {};
  REQUIRE(eventually([&] { return ::waitid(P_PID, c.pid, &si, WSTOPPED | WNOHANG | WNOWAIT) == 0 && si.si_pid == c.pid; }));
  CHECK(si.si_status == SIGUSR1);
  REQUIRE(interrupt(c.pid).ok());
  auto regs = get_regs(c.pid);
  REQUIRE(regs.ok());
  CHECK(regs->gp.rip == uint64_t(uintptr_t(&on_usr1)));  // frame set up, handler not run
  CHECK(peek(c.pid, g_usr1) == 0);
  REQUIRE(detach(c.pid).ok());
  CHECK(eventually([&] { return peek(c.pid, g_usr1) == 1; }));
}

TEST_CASE("sigmask round trip and peek_siginfo of both queues", "[infect]") {
  Pipe ready;
  Child c([&] {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    ::sigprocmask(SIG_BLOCK, &s, nullptr);
    (void)!::write(ready.w, "r", 1);
    loop_forever();
  });
  char b = 0;
  REQUIRE(read_timeout(ready.r, &b, 1));
  union sigval v;
  v.sival_int = 1234;
  REQUIRE(::sigqueue(c.pid, SIGUSR2, v) == 0);  // process-wide queue
  siginfo_t si = {};
  si.si_signo = SIGUSR2;
  si.si_code = SI_QUEUE;
  si.si_pid = ::getpid();
  si.si_uid = ::getuid();
  si.si_value.sival_int = 77;
  REQUIRE(::syscall(SYS_rt_tgsigqueueinfo, c.pid, c.pid, SIGUSR2, &si) == 0);  // the thread's queue
  stop_all({c.pid});

  auto mask = get_sigmask(c.pid);
  REQUIRE(mask.ok());
  CHECK(*mask == (uint64_t(1) << (SIGUSR2 - 1)));
  uint64_t more = *mask | (uint64_t(1) << (SIGHUP - 1)) | (uint64_t(1) << (SIGRTMIN + 3 - 1));
  REQUIRE(set_sigmask(c.pid, more).ok());
  CHECK(get_sigmask(c.pid).value_or(0) == more);
  REQUIRE(set_sigmask(c.pid, *mask).ok());

  for (bool shared : {true, false}) {
    auto q = peek_siginfo(c.pid, shared);
    REQUIRE(q.ok());
    REQUIRE(q->size() == 1);
    siginfo_t got;
    std::memcpy(&got, (*q)[0].data(), sizeof got);
    CHECK(got.si_signo == SIGUSR2);
    CHECK(got.si_code == SI_QUEUE);
    CHECK(got.si_value.sival_int == (shared ? 1234 : 77));
  }
}

TEST_CASE("xmm0/ymm0 of a looping child: seen in xstate, changed by set_regs", "[infect]") {
  if (!__builtin_cpu_supports("avx")) {
    WARN("no AVX: skipped");
    return;
  }
  alignas(32) static const uint8_t pattern[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  Child c([] {
    asm volatile(
        "vmovdqu (%0), %%ymm0\n"
        "1: movdqu %%xmm0, (%1)\n"
        "pause\n"
        "jmp 1b\n" ::"r"(pattern),
        "r"(g_seen_xmm0)
        : "xmm0", "memory");
  });
  REQUIRE(eventually([&] { return peek(c.pid, g_seen_xmm0[15]) == 16; }));
  stop_all({c.pid});
  auto regs = get_regs(c.pid);
  REQUIRE(regs.ok());
  unsigned eax, ebx, ecx, edx;
  __cpuid_count(0xd, 2, eax, ebx, ecx, edx);  // offset of the AVX (upper ymm) component
  REQUIRE(regs->xstate.size() >= ebx + 16);
  CHECK(std::memcmp(regs->xstate.data() + 160, pattern, 16) == 0);  // xmm0 in the legacy area
  CHECK(std::memcmp(regs->xstate.data() + ebx, pattern + 16, 16) == 0);

  for (int i = 0; i < 16; ++i) regs->xstate[160 + i] = uint8_t(0xa0 + i);
  REQUIRE(set_regs(c.pid, *regs).ok());
  REQUIRE(detach(c.pid).ok());
  CHECK(eventually([&] { return peek(c.pid, g_seen_xmm0[0]) == 0xa0 && peek(c.pid, g_seen_xmm0[15]) == 0xaf; }));
}

TEST_CASE("a stopped (SIGSTOP) child: interrupt, remote syscall, stays stopped after detach", "[infect]") {
  Child c([] { loop_forever(); });
  REQUIRE(::kill(c.pid, SIGSTOP) == 0);
  REQUIRE(eventually([&] { return proc::state_letter(c.pid) == 'T'; }));
  stop_all({c.pid});
  {
    auto r = Remote::open(c.pid);
    REQUIRE(r.ok());
    auto got = r->syscall(SYS_getpid);
    INFO((got ? "" : got.error().message));
    CHECK(got.value_or(-1) == c.pid);
  }
  REQUIRE(detach(c.pid).ok());
  uint64_t a = peek(c.pid, g_counter);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CHECK(peek(c.pid, g_counter) == a);
  REQUIRE(::kill(c.pid, SIGCONT) == 0);
  CHECK(eventually([&] { return peek(c.pid, g_counter) != a; }));
}

TEST_CASE("a thread that exits under a remote syscall or while seized is an error, not a hang", "[infect]") {
  SECTION("exit_group run remotely") {
    Child c([] { loop_forever(); });
    stop_all({c.pid});
    auto r = Remote::open(c.pid);
    REQUIRE(r.ok());
    auto res = r->syscall(SYS_exit_group, 3);
    REQUIRE_FALSE(res.ok());
    CHECK(res.error().message.find("tid " + std::to_string(c.pid)) != std::string::npos);
    CHECK(res.error().message.find("exited with status 3") != std::string::npos);
    CHECK_FALSE(r->syscall(SYS_getpid).ok());
    CHECK(r->close().ok());  // nothing left to put back
  }
  SECTION("SIGKILL between remote syscalls") {
    Child c([] { loop_forever(); });
    stop_all({c.pid});
    auto r = Remote::open(c.pid);
    REQUIRE(r.ok());
    CHECK(r->syscall(SYS_getpid).value_or(-1) == c.pid);
    REQUIRE(::kill(c.pid, SIGKILL) == 0);
    CHECK_FALSE(r->syscall(SYS_getpid).ok());
  }
  SECTION("exit while seized but not stopped") {
    Pipe go;
    Child c([&] {
      char b;
      (void)!::read(go.r, &b, 1);
      ::_exit(5);
    });
    REQUIRE(seize(c.pid).ok());
    REQUIRE(::write(go.w, "g", 1) == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto r = interrupt(c.pid);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("exited with status 5") != std::string::npos);
  }
  SECTION("exit_group from one thread of four: the others and the leader report errors") {
    Pipe p;
    Child* child = nullptr;
    auto tids = spawn_threads(child, p, 3);
    std::unique_ptr<Child> guard(child);
    stop_all(tids);
    {
      auto r = Remote::open(tids[2]);
      REQUIRE(r.ok());
      CHECK_FALSE(r->syscall(SYS_exit_group, 9).ok());
    }
    for (pid_t t : {tids[1], tids[3], tids[0]}) {
      auto r = Remote::open(t);
      if (!r) continue;  // already gone: an error, fine
      CHECK_FALSE(r->syscall(SYS_getpid).ok());
    }
  }
}

TEST_CASE("a remote syscall that blocks past the bound is interrupted; the Remote stays usable", "[infect]") {
  Pipe empty;
  Child c([] { loop_forever(); });
  stop_all({c.pid});
  {
    auto r = Remote::open(c.pid);
    REQUIRE(r.ok());
    r->set_timeout_ms(200);
    uint64_t buf = r->scratch(1).value_or(0);
    REQUIRE(buf != 0);
    auto blocked = r->syscall(SYS_read, uint64_t(empty.r), buf, 1);  // nobody writes
    REQUIRE_FALSE(blocked.ok());
    CHECK(blocked.error().sys_errno == ETIMEDOUT);
    CHECK(r->syscall(SYS_getpid).value_or(-1) == c.pid);
    REQUIRE(r->close().ok());
  }
  REQUIRE(detach(c.pid).ok());
  uint64_t a = peek(c.pid, g_counter);
  CHECK(eventually([&] { return peek(c.pid, g_counter) != a; }));
}

TEST_CASE("cgroup-frozen child: seize and request while frozen, thaw, then wait", "[infect]") {
  const std::string base = "/sys/fs/cgroup/freezer";
  if (!fs::is_dir(base)) {
    WARN("no cgroup v1 freezer: skipped");
    return;
  }
  const std::string cg = base + "/envrun-unit-infect-" + std::to_string(::getpid());
  REQUIRE(fs::mkdir_p(cg).ok());
  {
    Child c([] { loop_forever(); });
    REQUIRE(fs::write_file(cg + "/cgroup.procs", std::to_string(c.pid)).ok());
    REQUIRE(fs::write_file(cg + "/freezer.state", "FROZEN").ok());
    REQUIRE(eventually([&] { return fs::read_file(cg + "/freezer.state").value_or("") == "FROZEN\n"; }));
    REQUIRE(seize(c.pid).ok());
    REQUIRE(interrupt_nowait(c.pid).ok());
    auto early = wait_interrupted(c.pid, 200);  // frozen: no stop can come
    REQUIRE_FALSE(early.ok());
    CHECK(early.error().sys_errno == ETIMEDOUT);
    uint64_t a = peek(c.pid, g_counter);
    REQUIRE(interrupt_nowait(c.pid).ok());
    REQUIRE(fs::write_file(cg + "/freezer.state", "THAWED").ok());
    auto r = wait_interrupted(c.pid);
    INFO((r ? "" : r.error().message));
    REQUIRE(r.ok());
    CHECK(peek(c.pid, g_counter) == a);  // no user code ran between thaw and stop
    REQUIRE(detach(c.pid).ok());
    CHECK(eventually([&] { return peek(c.pid, g_counter) != a; }));
  }
  (void)::rmdir(cg.c_str());
}

TEST_CASE("remote syscall cost (printed, not asserted)", "[infect]") {
  Child c([] { loop_forever(); });
  stop_all({c.pid});
  auto r = Remote::open(c.pid);
  REQUIRE(r.ok());
  const int n = 2000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) REQUIRE(r->syscall(SYS_getppid).value_or(-1) == ::getpid());
  auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  WARN("remote getppid: " << us / n << " us per call over " << n << " calls");
}
