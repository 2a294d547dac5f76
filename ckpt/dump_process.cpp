// capture_process (dump_process.hpp).
#include "ckpt/dump_process.hpp"

#include <linux/prctl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <cstdio>
#include <cstring>
#include <sstream>

#include "kernel/fs.hpp"

#include "ckpt/dirty_track.hpp"
#include "ckpt/proc_read.hpp"

namespace envrun::ckpt {

namespace {

constexpr int kPtraceGetRseqConfiguration = 0x420f;
struct RseqConfiguration {
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size, signature, flags, pad;
};

// A remote syscall's output struct, from the scratch page into obj.
template <class T>
Result<void> read_into(pid_t pid, uint64_t addr, T& obj) {
  return infect::read_mem(pid, addr, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&obj), sizeof obj));
}

Error at(pid_t pid, Error e) { return std::move(e).with_context("checkpoint: pid " + std::to_string(pid)); }

// A syscall instruction every thread can use without writing into the target: the vdso's.
Result<uint64_t> vdso_syscall(pid_t pid, const std::vector<Vma>& vmas) {
  for (const auto& v : vmas)
    if (v.kind == Vma::Kind::Vdso) return infect::find_syscall_insn(pid, v.start, v.end);
  return Error::make(ErrorKind::System, "no [vdso] mapping (booted with vdso=0?): not supported");
}

// rt_sigaction(sig, NULL, scratch) for every catchable signal.
Result<void> sigactions(infect::Remote& r, uint64_t scratch, pid_t pid, ProcessCore& p) {
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    long rc = ENVRUN_TRY(r.syscall(SYS_rt_sigaction, uint64_t(sig), 0, scratch, 8));
    if (rc < 0) continue;  // 32, 33: glibc-reserved numbers still answer; others may not
    SigAction a{};
    ENVRUN_CHECK(read_into(pid, scratch, a));
    if (a.handler != 0 || a.flags != 0 || a.mask != 0) p.sigactions[sig] = a;
  }
  return ok();
}

// The thread's seccomp filters (PTRACE_SECCOMP_GET_FILTER: index 0 is the newest).
Result<void> thread_seccomp(pid_t tid, ThreadCore& t) {
  constexpr int kGetFilter = 0x420c;  // PTRACE_SECCOMP_GET_FILTER
  for (unsigned long i = 0;; ++i) {
    long n = ::ptrace(static_cast<__ptrace_request>(kGetFilter), tid, i, nullptr);
    if (n < 0 && (errno == ENOENT || (errno == EINVAL && i == 0))) break;  // past the last; EINVAL: no filter mode
    if (n < 0) return Error::sys("tid " + std::to_string(tid) + ": seccomp filter " + std::to_string(i));
    std::vector<uint64_t> prog(static_cast<size_t>(n));
    if (::ptrace(static_cast<__ptrace_request>(kGetFilter), tid, i, prog.data()) != n)
      return Error::sys("tid " + std::to_string(tid) + ": seccomp filter " + std::to_string(i));
    t.seccomp.insert(t.seccomp.begin(), std::move(prog));
  }
  return ok();
}

// From ptrace and from outside: mask, pending signals, robust list, rseq, the tid.
Result<void> thread_basics(pid_t pid, pid_t tid, ThreadCore& t) {
  t.host_tid = tid;
  t.tid = proc::ns_tid(pid, tid);
  t.sigmask = ENVRUN_TRY(infect::get_sigmask(tid));
  t.pending = ENVRUN_TRY(infect::peek_siginfo(tid, false));
  uint64_t head = 0;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, tid, &head, &len) == 0) t.robust_list = head, t.robust_len = len;
  RseqConfiguration rs{};
  if (::ptrace(static_cast<__ptrace_request>(kPtraceGetRseqConfiguration), tid, sizeof rs, &rs) == long(sizeof rs) &&
      rs.rseq_abi_pointer)
    t.rseq = rs.rseq_abi_pointer, t.rseq_len = rs.rseq_abi_size, t.rseq_sig = rs.signature;
  return thread_seccomp(tid, t);
}

// From inside the thread: its alternate signal stack and clear_child_tid address.
Result<void> thread_extras(infect::Remote& r, pid_t pid, uint64_t scratch, ThreadCore& t) {
  uint64_t ss[3] = {};
  long rc = ENVRUN_TRY(r.syscall(SYS_sigaltstack, 0, scratch));
  if (rc == 0) ENVRUN_CHECK(read_into(pid, scratch, ss));
  t.altstack_sp = ss[0];
  t.altstack_flags = int(ss[1] & 0xffffffff);
  t.altstack_size = ss[2];
  uint64_t ctid = 0;
  rc = ENVRUN_TRY(r.syscall(SYS_prctl, PR_GET_TID_ADDRESS, scratch));
  if (rc == 0) ENVRUN_CHECK(read_into(pid, scratch, ctid));
  t.clear_tid = ctid;
  return ok();
}

// getitimer for the three interval timers; /proc/PID/timers + timer_gettime for POSIX ones.
Result<void> timers(infect::Remote& r, uint64_t scratch, pid_t pid, ProcessCore& p) {
  for (int which = 0; which < 3; ++which) {
    int64_t v[4] = {};
    long rc = ENVRUN_TRY(r.syscall(SYS_getitimer, uint64_t(which), scratch));
    if (rc == 0) ENVRUN_CHECK(read_into(pid, scratch, v));
    p.itimers.push_back(ITimer{v[0], v[1], v[2], v[3]});
  }
  auto text = fs::read_file("/proc/" + std::to_string(pid) + "/timers");
  if (!text) return ok();
  std::istringstream in(*text);
  std::string line;
  PosixTimer t;
  bool have = false;
  auto flush = [&]() -> Result<void> {
    if (!have) return ok();
    int64_t v[4] = {};
    long rc = ENVRUN_TRY(r.syscall(SYS_timer_gettime, uint64_t(t.id), scratch));
    if (rc == 0) ENVRUN_CHECK(read_into(pid, scratch, v));
    t.interval_sec = v[0], t.interval_nsec = v[1], t.value_sec = v[2], t.value_nsec = v[3];
    p.timers.push_back(t);
    t = PosixTimer{};
    have = false;
    return ok();
  };
  while (std::getline(in, line)) {
    unsigned long long val = 0;
    int n = 0;
    char kind[16] = {};
    if (std::sscanf(line.c_str(), "ID: %d", &n) == 1) {
      ENVRUN_CHECK(flush());
      t.id = n, have = true;
    } else if (std::sscanf(line.c_str(), "signal: %d/%llx", &n, &val) == 2) {
      t.signo = n, t.sigval = val;
    } else if (std::sscanf(line.c_str(), "notify: %15[a-z]/%*[a-z].%d", kind, &n) >= 1) {
      std::string k = kind;
      t.notify = k == "thread" ? 4 /* SIGEV_THREAD_ID */ : k == "none" ? 1 /* SIGEV_NONE */ : 0 /* SIGEV_SIGNAL */;
      if (t.notify == 4)
        for (const auto& th : p.threads)
          if (th.host_tid == n) t.tid = th.tid;
    } else if (std::sscanf(line.c_str(), "ClockID: %d", &n) == 1) {
      t.clock = n;
    }
  }
  return flush();
}

}  // namespace

Result<CapturedProcess> capture_process(pid_t pid, const std::vector<pid_t>& tids, FileTable& files) {
  CapturedProcess c;
  ProcessCore& p = c.core;
  ENVRUN_CHECK(proc::read_identity(pid, p));
  if (p.seccomp_mode == 1)
    return Error::make(ErrorKind::System, "pid " + std::to_string(pid) + ": in strict seccomp mode: cannot be checkpointed");
  p.auxv = ENVRUN_TRY(proc::read_auxv(pid));
  p.vmas = ENVRUN_TRY(proc::read_maps(pid));
  for (int r = 0; r < RLIM_NLIMITS; ++r) {
    struct rlimit lim {};
    if (::prlimit(pid, static_cast<__rlimit_resource>(r), nullptr, &lim) == 0) p.rlimits[r] = {lim.rlim_cur, lim.rlim_max};
  }
  for (const auto& fd : ENVRUN_TRY(proc::read_fds(pid))) {
    if (is_tracker_fd(fd)) continue;  // envrun's own memory tracker (dirty_track.hpp)
    auto e = files.add(pid, p.pid, fd);
    if (!e) return at(pid, std::move(e).error());
    p.fds.push_back(*e);
  }
  // Masks and pending signals first: a Remote blocks every signal while it works.
  p.shared_pending = ENVRUN_TRY(infect::peek_siginfo(tids.at(0), true));
  for (pid_t tid : tids) {
    ThreadCore t;
    ENVRUN_CHECK(thread_basics(pid, tid, t));
    p.threads.push_back(std::move(t));
  }
  uint64_t insn = ENVRUN_TRY(vdso_syscall(pid, p.vmas));
  auto main = infect::Remote::open(tids[0], insn);
  if (!main) return at(pid, std::move(main).error());
  uint64_t scratch = ENVRUN_TRY(main->scratch(4096));
  p.brk = uint64_t(ENVRUN_TRY(main->syscall(SYS_brk, 0)));
  ENVRUN_CHECK(sigactions(*main, scratch, pid, p));
  ENVRUN_CHECK(timers(*main, scratch, pid, p));
  ENVRUN_CHECK(thread_extras(*main, pid, scratch, p.threads[0]));
  for (size_t i = 1; i < tids.size(); ++i) {
    auto r = ENVRUN_TRY(infect::Remote::open(tids[i], insn));  // the main thread's scratch page serves all
    ENVRUN_CHECK(thread_extras(r, pid, scratch, p.threads[i]));
    ENVRUN_CHECK(r.close());
  }
  ENVRUN_CHECK(main->close());  // removes the scratch page and puts the main thread back
  // Registers last: the Remotes above have put back exactly what the threads had.
  for (pid_t tid : tids) c.regs.push_back(ENVRUN_TRY(infect::get_regs(tid)));
  return c;
}

}  // namespace envrun::ckpt
