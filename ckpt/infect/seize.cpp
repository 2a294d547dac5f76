// Seizing, stopping and releasing threads.
//
// seize() never waits: a thread in a frozen cgroup cannot stop before it is thawed,
// and the engine seizes every thread of a frozen tree first. interrupt() = the
// PTRACE_INTERRUPT request + the wait for its stop, in two halves for that order.
//
// A signal-delivery-stop met while waiting means the thread had already dequeued a
// signal: that stop consumed the interrupt (any ptrace trap clears a pending one),
// and detaching or leaving it there would drop the signal. We give the signal back
// (PTRACE_CONT with it, after asking the interrupt again) and wait on: the thread
// then stops at its next signal check, with the handler frame set up but not run.
// Re-queueing it instead is not possible from outside for kill()-sent signals
// (rt_tgsigqueueinfo refuses si_code >= 0 from another process).
#include <signal.h>
#include <sys/ptrace.h>

#include "ckpt/infect/detail.hpp"
#include "ckpt/infect/infect.hpp"

namespace envrun::infect {

using detail::Stop;

Result<void> seize(pid_t tid) {
  if (::ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(long(PTRACE_O_TRACESYSGOOD))) != 0)
    return detail::sys_error(tid, "PTRACE_SEIZE");
  return ok();
}

Result<void> interrupt_nowait(pid_t tid) {
  if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) return detail::sys_error(tid, "PTRACE_INTERRUPT");
  return ok();
}

Result<void> wait_interrupted(pid_t tid, int timeout_ms) {
  Stop s = ENVRUN_TRY(detail::wait_stop(tid, timeout_ms, "the interrupt stop"));
  if (s.kind == Stop::Event) return ok();
  // A signal-delivery-stop (or a syscall stop, if someone stepped the thread): the
  // pending interrupt is gone; resume with the signal and stop again.
  return detail::reach_event_stop(tid, s.kind == Stop::Signal ? s.sig : 0, timeout_ms);
}

Result<void> interrupt(pid_t tid) {
  ENVRUN_CHECK(interrupt_nowait(tid));
  return wait_interrupted(tid, kStopTimeoutMs);
}

Result<void> detach(pid_t tid) {
  if (::ptrace(PTRACE_DETACH, tid, nullptr, nullptr) != 0) return detail::sys_error(tid, "PTRACE_DETACH");
  return ok();
}

}  // namespace envrun::infect
