// Signal state of a stopped thread: its mask and its pending signals.
//
// PTRACE_GETSIGMASK gives the mask the thread returns to: during sigsuspend/ppoll/
// pselect that is the saved mask, not the temporary one. PTRACE_SETSIGMASK sets the
// mask and drops the "restore the saved mask" flag, which is what the kernel would
// do when the interrupted call restarts; so a get/set pair keeps the thread's state.
#include <signal.h>
#include <sys/ptrace.h>

#include "ckpt/infect/detail.hpp"
#include "ckpt/infect/infect.hpp"

namespace envrun::infect {

Result<uint64_t> get_sigmask(pid_t tid) {
  uint64_t mask = 0;
  if (::ptrace(PTRACE_GETSIGMASK, tid, reinterpret_cast<void*>(sizeof mask), &mask) != 0)
    return detail::sys_error(tid, "PTRACE_GETSIGMASK");
  return mask;
}

Result<void> set_sigmask(pid_t tid, uint64_t mask) {
  if (::ptrace(PTRACE_SETSIGMASK, tid, reinterpret_cast<void*>(sizeof mask), &mask) != 0)
    return detail::sys_error(tid, "PTRACE_SETSIGMASK");
  return ok();
}

Result<std::vector<std::vector<uint8_t>>> peek_siginfo(pid_t tid, bool shared) {
  constexpr unsigned kBatch = 32;
  constexpr size_t kSiginfo = 128;
  static_assert(sizeof(siginfo_t) == kSiginfo);
  std::vector<std::vector<uint8_t>> out;
  siginfo_t batch[kBatch];
  for (;;) {
    struct __ptrace_peeksiginfo_args args = {};
    args.off = out.size();
    args.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0;
    args.nr = kBatch;
    long n = ::ptrace(PTRACE_PEEKSIGINFO, tid, &args, batch);
    if (n < 0) return detail::sys_error(tid, shared ? "PTRACE_PEEKSIGINFO (shared queue)" : "PTRACE_PEEKSIGINFO");
    if (n == 0) return out;
    for (long i = 0; i < n; ++i) {
      auto* p = reinterpret_cast<const uint8_t*>(&batch[i]);
      out.emplace_back(p, p + kSiginfo);
    }
  }
}

}  // namespace envrun::infect
