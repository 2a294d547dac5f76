// Bounded waits for ptrace stops, and the error text of the library.
//
// waitpid has no timeout, so the wait polls with WNOHANG: sched_yield() turns for the
// first 100 us (a stepped syscall stops within ~10 us, often on the other core), then
// sleeps that double from 10 us to 1 ms. Measured (remote getppid, 2 cores): 20-30 us
// per call, the same as a blocking waitpid. Every ~50 ms it also looks at the thread's
// state in /proc: a thread group leader that exited while other threads live is a
// zombie that waitpid will not report, and must not cost the whole bound.
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>

#include <chrono>
#include <cstring>

#include "ckpt/infect/detail.hpp"
#include "kernel/process.hpp"

namespace envrun::infect::detail {

Error sys_error(pid_t tid, const std::string& op, int e) {
  return Error{e, ErrorKind::System, "infect: tid " + std::to_string(tid) + ": " + op + ": " + std::strerror(e)};
}

Error error(pid_t tid, const std::string& what, int e) {
  return Error{e, ErrorKind::System, "infect: tid " + std::to_string(tid) + ": " + what};
}

std::string describe(const Stop& s) {
  switch (s.kind) {
    case Stop::Syscall: return "syscall stop";
    case Stop::Signal: return std::string("signal-delivery-stop for ") + strsignal(s.sig);
    case Stop::Event: break;
  }
  if (s.event == PTRACE_EVENT_STOP && s.sig == SIGTRAP) return "interrupt stop";
  if (s.event == PTRACE_EVENT_STOP) return std::string("group-stop (") + strsignal(s.sig) + ")";
  return "ptrace event " + std::to_string(s.event);
}

static Stop decode(int status) {
  Stop s;
  int sig = WSTOPSIG(status);
  s.event = (status >> 16) & 0xff;
  if (sig == (SIGTRAP | 0x80)) {
    s.kind = Stop::Syscall;
    s.sig = SIGTRAP;
  } else {
    s.kind = s.event != 0 ? Stop::Event : Stop::Signal;
    s.sig = sig;
  }
  return s;
}

static Error exit_error(pid_t tid, int status, const std::string& what) {
  if (WIFEXITED(status))
    return error(tid, "exited with status " + std::to_string(WEXITSTATUS(status)) + " while waiting for " + what, ESRCH);
  return error(tid, std::string("killed by ") + strsignal(WTERMSIG(status)) + " while waiting for " + what, ESRCH);
}

static void pause_for(long us) {
  if (us == 0) {
    sched_yield();
    return;
  }
  struct timespec ts = {0, us * 1000};
  nanosleep(&ts, nullptr);
}

Result<Stop> wait_stop(pid_t tid, int timeout_ms, const std::string& what) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kSpin = std::chrono::microseconds(100);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::milliseconds(timeout_ms);
  auto next_state_check = start + std::chrono::milliseconds(50);
  long sleep_us = 0;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(tid, &status, __WALL | WNOHANG);
    if (r == tid) {
      if (WIFSTOPPED(status)) return decode(status);
      if (WIFEXITED(status) || WIFSIGNALED(status)) return exit_error(tid, status, what);
      continue;  // WIFCONTINUED is not asked for; ignore anything else
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return sys_error(tid, "waitpid for " + what);
    auto now = Clock::now();
    if (now >= deadline)
      return error(tid, "no " + what + " within " + std::to_string(timeout_ms) + " ms", ETIMEDOUT);
    if (now >= next_state_check) {
      next_state_check = now + std::chrono::milliseconds(50);
      char st = proc::state_letter(tid);
      if (st == 0 || st == 'Z' || st == 'X') return error(tid, "thread exited while waiting for " + what, ESRCH);
    }
    if (now - start >= kSpin) sleep_us = sleep_us == 0 ? 10 : std::min(sleep_us * 2, 1000L);
    pause_for(sleep_us);
  }
}

// Resume the thread (from whatever ptrace stop it is in) with an interrupt pending,
// and wait for the interrupt stop. A syscall stop on the way (the thread was
// stepping) or a signal-delivery-stop consumes the pending interrupt (any ptrace trap
// does), so it is asked again; the signal of a signal-delivery-stop is given back to
// the thread so that it is not lost.
Result<void> reach_event_stop(pid_t tid, int sig, int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) return sys_error(tid, "PTRACE_INTERRUPT");
    if (::ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(long(sig))) != 0)
      return sys_error(tid, "PTRACE_CONT");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    Stop s = ENVRUN_TRY(wait_stop(tid, int(std::max<long>(left, 1)), "the interrupt stop"));
    if (s.kind == Stop::Event) return ok();
    sig = s.kind == Stop::Signal ? s.sig : 0;
  }
}

}  // namespace envrun::infect::detail
