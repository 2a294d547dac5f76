// The stub tree (restore_stub.hpp). Everything here runs in forked copies of envrun
// that the engine will take over with ptrace: no return, no exit handlers, no stdio.
#include "ckpt/restore_stub.hpp"

#include "ckpt/restore_sockets.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <cstdlib>
#include <set>

#include "kernel/fs.hpp"

namespace envrun::ckpt {

namespace {

// The kernel's struct sigaction for rt_sigaction(2).
struct KernelSigaction {
  uint64_t handler, flags, restorer, mask;
};

// A thread that runs no C code: clone3 returns 0 on its own (unused) stack and the
// thread loops in pause(2) with every signal blocked until the engine seizes it.
long clone3_waiting_thread(clone_args* args) {
  long ret;
  asm volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "2: mov $34, %%eax\n\t"  // SYS_pause
      "syscall\n\t"
      "jmp 2b\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "0"(long(SYS_clone3)), "D"(args), "S"(sizeof(clone_args))
      : "rcx", "r11", "memory");
  return ret;
}

[[noreturn]] void fail(int ready_fd, pid_t pid, const std::string& what, int e) {
  StubReady r;
  r.pid = pid;
  r.err = e ? e : EINVAL;
  const std::string& text = what;  // an Error's message already names errno
  std::strncpy(r.msg, text.c_str(), sizeof r.msg - 1);
  (void)!::write(ready_fd, &r, sizeof r);
  ::_exit(127);
}

Result<void> make_threads(const ProcessCore& p) {
  for (size_t i = 1; i < p.threads.size(); ++i) {
    void* stack = ::mmap(nullptr, 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) return Error::sys("thread stack");
    pid_t tid = p.threads[i].tid;
    clone_args a{};
    a.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    a.stack = reinterpret_cast<uint64_t>(stack);
    a.stack_size = 16384;
    a.set_tid = reinterpret_cast<uint64_t>(&tid);
    a.set_tid_size = 1;
    long r = clone3_waiting_thread(&a);
    if (r < 0) return Error::sys("clone3 of thread " + std::to_string(tid), int(-r));
  }
  return ok();
}

// Files the root stub made itself (sockets and files below the tree's own mounts: in
// its namespaces); the other stubs inherit them at fork.
std::map<uint64_t, UniqueFd> g_stub_fds;

// The fd table exactly as dumped. Engine fds (inherited) move above every number in
// use, then onto their targets; everything else is closed except `keep`.
Result<void> set_fds(const Plan& plan, const ProcessCore& p, const std::set<int>& keep) {
  int top = 0;
  for (const auto& e : p.fds) top = std::max(top, e.fd);
  for (int k : keep) top = std::max(top, k);
  for (const auto& [id, fd] : plan.file_fds) top = std::max(top, fd.get());
  for (const auto& [id, fd] : g_stub_fds) top = std::max(top, fd.get());
  std::vector<std::pair<int, const FdEntry*>> moved;
  for (const auto& e : p.fds) {
    if (keep.count(e.fd)) return Error::make(ErrorKind::System, "fd " + std::to_string(e.fd) + " is needed by the restore itself");
    auto it = plan.file_fds.find(e.file);
    if (it == plan.file_fds.end()) it = g_stub_fds.find(e.file);
    if (it == g_stub_fds.end()) return Error::make(ErrorKind::Config, "fd " + std::to_string(e.fd) + ": unknown file");
    int m = ::fcntl(it->second.get(), F_DUPFD_CLOEXEC, top + 1);
    if (m < 0) return Error::sys("fd " + std::to_string(e.fd) + ": dup");
    moved.push_back({m, &e});
  }
  std::set<int> stay(keep);
  for (auto& [m, e] : moved) stay.insert(m);
  std::vector<int> open;
  for (const auto& name : fs::list_dir("/proc/self/fd")) open.push_back(std::atoi(name.c_str()));
  for (int fd : open)
    if (!stay.count(fd)) ::close(fd);  // (the directory's own fd is gone already: EBADF)
  for (auto& [m, e] : moved) {
    if (::dup3(m, e->fd, e->cloexec ? O_CLOEXEC : 0) < 0) return Error::sys("fd " + std::to_string(e->fd) + ": dup3");
    ::close(m);
  }
  return ok();
}

Result<void> set_cwd(const Plan& plan, const ProcessCore& p) {
  std::string cwd = plan.inside(p.cwd);
  if (p.cwd_deleted) {
    // Re-create the removed directory long enough to enter it.
    if (::mkdir(cwd.c_str(), 0700) < 0 && errno != EEXIST) return Error::sys("cwd " + cwd + " (removed): mkdir");
    if (::chdir(cwd.c_str()) < 0) return Error::sys("cwd " + cwd);
    if (::rmdir(cwd.c_str()) < 0) return Error::sys("cwd " + cwd + " (removed): rmdir");
    return ok();
  }
  if (!cwd.empty() && ::chdir(cwd.c_str()) < 0) return Error::sys("cwd " + cwd);
  return ok();
}

Result<void> set_signals(const ProcessCore& p) {
  for (const auto& [sig, a] : p.sigactions) {
    KernelSigaction k{a.handler, a.flags, a.restorer, a.mask};
    if (::syscall(SYS_rt_sigaction, sig, &k, nullptr, 8) < 0) return Error::sys("rt_sigaction " + std::to_string(sig));
  }
  pid_t self = ::getpid();
  for (const auto& info : p.shared_pending) {
    siginfo_t si;
    std::memcpy(&si, info.data(), std::min(info.size(), sizeof si));
    if (::syscall(SYS_rt_sigqueueinfo, self, si.si_signo, &si) < 0) return Error::sys("queue pending signal " + std::to_string(si.si_signo));
  }
  for (const auto& t : p.threads)
    for (const auto& info : t.pending) {
      siginfo_t si;
      std::memcpy(&si, info.data(), std::min(info.size(), sizeof si));
      if (::syscall(SYS_rt_tgsigqueueinfo, self, t.tid, si.si_signo, &si) < 0)
        return Error::sys("queue pending signal " + std::to_string(si.si_signo) + " of thread " + std::to_string(t.tid));
    }
  return ok();
}

// Interval timers, and POSIX timers under their old ids (PR_TIMER_CREATE_RESTORE_IDS).
Result<void> set_timers(const ProcessCore& p) {
  for (size_t which = 0; which < p.itimers.size() && which < 3; ++which) {
    const auto& t = p.itimers[which];
    if (!t.value_sec && !t.value_usec && !t.interval_sec && !t.interval_usec) continue;
    struct itimerval v {{t.interval_sec, t.interval_usec}, {t.value_sec, t.value_usec}};
    // A periodic ITIMER_REAL whose SIGALRM is pending (not yet dequeued) reads 0: the
    // kernel re-arms it when the signal is dequeued. Arm it to expire at once (the
    // signal merges with the pending one) so that it is periodic again.
    if (!t.value_sec && !t.value_usec) v.it_value.tv_usec = 1;
    if (::setitimer(static_cast<__itimer_which>(which), &v, nullptr) < 0) return Error::sys("setitimer");
  }
  if (p.timers.empty()) return ok();
  constexpr int kPrTimerCreateRestoreIds = 77;
  if (::prctl(kPrTimerCreateRestoreIds, 1, 0, 0, 0) < 0)
    return Error::sys("POSIX timers: this kernel cannot re-create timer ids (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.16+)");
  for (const auto& t : p.timers) {
    struct sigevent ev {};
    ev.sigev_notify = t.notify;
    ev.sigev_signo = t.signo;
    ev.sigev_value.sival_ptr = reinterpret_cast<void*>(t.sigval);
    if (t.notify == 4) ev._sigev_un._tid = t.tid;
    int id = t.id;
    if (::syscall(SYS_timer_create, t.clock, &ev, &id) < 0) return Error::sys("timer_create id " + std::to_string(t.id));
    if (id != t.id) return Error::make(ErrorKind::System, "timer_create: got id " + std::to_string(id) + ", not " + std::to_string(t.id));
    struct itimerspec spec {{t.interval_sec, t.interval_nsec}, {t.value_sec, t.value_nsec}};
    if (!t.value_sec && !t.value_nsec && (t.interval_sec || t.interval_nsec)) spec.it_value.tv_nsec = 1;  // as for ITIMER_REAL
    if ((spec.it_value.tv_sec || spec.it_value.tv_nsec) && ::syscall(SYS_timer_settime, id, 0, &spec, nullptr) < 0)
      return Error::sys("timer_settime id " + std::to_string(t.id));
  }
  (void)::prctl(kPrTimerCreateRestoreIds, 0, 0, 0, 0);
  return ok();
}

void set_rlimits(const ProcessCore& p) {
  for (const auto& [r, v] : p.rlimits) {
    struct rlimit cur {};
    if (::getrlimit(static_cast<__rlimit_resource>(r), &cur) < 0) continue;
    struct rlimit want {v.first, v.second};
    if (want.rlim_max > cur.rlim_max) want.rlim_max = cur.rlim_max;  // no CAP_SYS_RESOURCE: cannot raise
    if (want.rlim_cur > want.rlim_max) want.rlim_cur = want.rlim_max;
    (void)::setrlimit(static_cast<__rlimit_resource>(r), &want);
  }
}

Result<void> set_session(const ProcessCore& p) {
  if (p.sid == p.pid) {
    if (::setsid() < 0 && ::getsid(0) != p.pid) return Error::sys("setsid");
  } else if (p.pgid != ::getpgid(0)) {
    if (::setpgid(0, p.pgid) < 0) return Error::sys("setpgid " + std::to_string(p.pgid));
  }
  return ok();
}

// Children first come up, zombies die; the SIGCHLDs the stub got are not the app's.
Result<void> fork_children(const Plan& plan, const ProcPlan& pp, int ready_fd) {
  std::vector<pid_t> zombies;
  for (size_t c : pp.children) {
    auto pid = clone3_with_pid(plan.procs[c].core.pid, 0);
    if (!pid) return std::move(pid).error().with_context("fork pid " + std::to_string(plan.procs[c].core.pid));
    if (*pid == 0) stub_main(plan, c, ready_fd);
    if (plan.procs[c].core.zombie) zombies.push_back(*pid);
  }
  for (pid_t z : zombies) {
    siginfo_t si{};
    if (::waitid(P_PID, id_t(z), &si, WEXITED | WNOWAIT) < 0) return Error::sys("zombie " + std::to_string(z));
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  struct timespec zero {};
  while (::sigtimedwait(&chld, nullptr, &zero) == SIGCHLD) {
  }
  return ok();
}

[[noreturn]] void zombie_exit(const ProcessCore& p) {
  int status = p.exit_code;
  if (WIFSIGNALED(status)) {
    ::signal(WTERMSIG(status), SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, WTERMSIG(status));
    ::sigprocmask(SIG_UNBLOCK, &one, nullptr);
    ::kill(::getpid(), WTERMSIG(status));
  }
  ::_exit(WEXITSTATUS(status));
}

}  // namespace

Result<pid_t> clone3_with_pid(pid_t pid, unsigned long flags) {
  clone_args a{};
  a.flags = flags;
  a.exit_signal = SIGCHLD;
  if (pid > 0) {
    a.set_tid = reinterpret_cast<uint64_t>(&pid);
    a.set_tid_size = 1;
  }
  long r = ::syscall(SYS_clone3, &a, sizeof a);
  if (r < 0) {
    int e = errno;
    return Error::sys(e == EEXIST ? "clone3: pid " + std::to_string(pid) + " is in use" : "clone3", e);
  }
  return pid_t(r);
}

void stub_main(const Plan& plan, size_t idx, int ready_fd, const std::function<Result<void>()>& in_root_stub) {
  const ProcPlan& pp = plan.procs[idx];
  const ProcessCore& p = pp.core;
  if (ready_fd < plan.fd_floor()) {  // out of the way of the fd numbers being restored
    int high = ::fcntl(ready_fd, F_DUPFD_CLOEXEC, plan.fd_floor());
    if (high >= 0) ::close(ready_fd), ready_fd = high;
  }
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  if (p.zombie) zombie_exit(p);
  auto step = [&](Result<void> r) {
    if (!r) fail(ready_fd, p.pid, r.error().message, r.error().sys_errno);
  };
  if (in_root_stub) step(in_root_stub());
  if (idx == 0) step(open_files_inside(plan, g_stub_fds));  // in the tree's mount namespace ...
  if (idx == 0) step(open_sockets(plan, g_stub_fds));       // ... and network namespace
  ::prctl(PR_SET_NAME, p.comm.c_str(), 0, 0, 0);
  step(set_session(p));
  step(fork_children(plan, pp, ready_fd));
  std::set<int> keep{ready_fd};
  for (const auto& [ino, fd] : plan.shm_fds) keep.insert(fd.get());
  step(set_cwd(plan, p));
  ::umask(p.umask);
  set_rlimits(p);
  step(set_fds(plan, p, keep));
  step(fill_epolls(plan, p));
  step(make_threads(p));
  step(set_signals(p));
  step(set_timers(p));
  StubReady r;
  r.pid = p.pid;
  (void)!::write(ready_fd, &r, sizeof r);
  ::close(ready_fd);
  for (;;) ::pause();
}

}  // namespace envrun::ckpt
