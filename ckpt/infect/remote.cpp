// Remote system calls: one `syscall` instruction stepped inside a stopped thread.
//
// A call: rip = the instruction, rax = nr, rdi rsi rdx r10 r8 r9 = arguments and
// orig_rax = -1 (so that no restart logic of a syscall the thread itself was in when
// it stopped applies while ours run), PTRACE_SYSCALL to the syscall-enter stop and
// again to the syscall-exit stop, where rax is the result. The thread's mask is all
// signals while a Remote is open, so no handler of the target runs in between.
//
// Closing: the registers and mask are put back at the syscall-exit stop, then the
// thread is resumed with an interrupt pending. It goes straight into the kernel's
// signal check, stops there (PTRACE_EVENT_STOP) with its own registers, and is then
// exactly where interrupt() had left it: on the final resume the kernel restarts its
// interrupted syscall (rax -ERESTART* -> orig_rax, rip - 2) or delivers a signal with
// the right restart semantics. Detaching right from the syscall-exit stop instead
// would return -ERESTARTSYS (-512) to the thread's code, since that path does not
// run the restart logic when no signal is pending.
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "ckpt/infect/detail.hpp"
#include "ckpt/infect/infect.hpp"

namespace envrun::infect {

using detail::Stop;

static constexpr uint8_t kSyscallInsn[2] = {0x0f, 0x05};

static Result<void> check_insn(pid_t tid, uint64_t at) {
  uint8_t b[2] = {};
  ENVRUN_CHECK(read_mem(tid, at, b));
  if (b[0] != kSyscallInsn[0] || b[1] != kSyscallInsn[1])
    return detail::error(tid, "no syscall instruction (0f 05) at the given address " + std::to_string(at), EINVAL);
  return ok();
}

Result<Remote> Remote::open(pid_t tid, uint64_t syscall_insn) {
  Remote r;
  r.tid_ = tid;
  r.saved_regs_.gp = ENVRUN_TRY(detail::get_gp(tid));
  r.saved_mask_ = ENVRUN_TRY(get_sigmask(tid));
  r.released_ = false;  // from here on, the destructor puts things back
  if (syscall_insn) {
    ENVRUN_CHECK(check_insn(tid, syscall_insn));
    r.insn_ = syscall_insn;
  } else {
    auto place = ENVRUN_TRY(detail::choose_syscall_place(tid));
    if (place.must_write) {
      ENVRUN_CHECK(read_mem(tid, place.addr, std::span<uint8_t>(r.saved_bytes_, 2)));
      ENVRUN_CHECK(write_mem(tid, place.addr, kSyscallInsn));
      r.wrote_insn_ = true;
    }
    r.insn_ = place.addr;
  }
  ENVRUN_CHECK(set_sigmask(tid, ~uint64_t(0)));
  return r;
}

Remote::Remote(Remote&& o) noexcept { *this = std::move(o); }

Remote& Remote::operator=(Remote&& o) noexcept {
  if (this == &o) return *this;
  (void)close();
  tid_ = o.tid_;
  insn_ = o.insn_;
  std::copy(std::begin(o.saved_bytes_), std::end(o.saved_bytes_), saved_bytes_);
  wrote_insn_ = o.wrote_insn_;
  released_ = std::exchange(o.released_, true);
  saved_regs_ = std::move(o.saved_regs_);
  saved_mask_ = o.saved_mask_;
  scratch_ = o.scratch_;
  scratch_size_ = o.scratch_size_;
  ran_ = o.ran_;
  dead_ = o.dead_;
  pending_sig_ = o.pending_sig_;
  timeout_ms_ = o.timeout_ms_;
  return *this;
}

Remote::~Remote() { (void)close(); }

void Remote::release() { released_ = true; }

// After a failed wait: remember whether the thread is gone for good.
static Error note_failure(Error e, bool& dead) {
  if (detail::is_gone(e)) dead = true;
  return e;
}

Result<long> Remote::syscall(long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                             uint64_t a6) {
  const std::string what = "remote syscall " + std::to_string(nr);
  if (dead_ || released_) return detail::error(tid_, what + ": the Remote is closed or its thread is gone", ESRCH);
  user_regs_struct r = saved_regs_.gp;
  r.rip = insn_;
  r.rax = uint64_t(nr);
  r.orig_rax = ~uint64_t(0);
  r.rdi = a1, r.rsi = a2, r.rdx = a3, r.r10 = a4, r.r8 = a5, r.r9 = a6;
  ENVRUN_CHECK(detail::set_gp(tid_, r));
  // A stop trap still pending from the interrupt (PTRACE_INTERRUPT on a thread that
  // was already stopped, e.g. in group-stop, stays pending) fires once before the
  // thread reaches user mode: it only costs one more PTRACE_SYSCALL.
  int stale_traps = 0;
  for (int phase = 0; phase < 2; ++phase) {
    const std::string stop = phase == 0 ? "syscall-enter stop" : "syscall-exit stop";
  again:
    if (::ptrace(PTRACE_SYSCALL, tid_, nullptr, nullptr) != 0)
      return note_failure(detail::sys_error(tid_, what + ": PTRACE_SYSCALL"), dead_);
    ran_ = true;
    auto s = detail::wait_stop(tid_, timeout_ms_, stop + " of " + what);
    if (!s) {
      Error e = note_failure(std::move(s).error(), dead_);
      if (e.sys_errno == ETIMEDOUT) stop_running_syscall();
      return e;
    }
    if (s->kind == Stop::Event && s->event == PTRACE_EVENT_STOP && phase == 0 && stale_traps++ < 2) goto again;
    if (s->kind != Stop::Syscall) {
      // The thread is stopped, but not where we want it: a signal that cannot be
      // blocked (SIGSTOP) or someone else's interrupt. Keep the signal for close().
      if (s->kind == Stop::Signal) pending_sig_ = s->sig;
      return detail::error(tid_, what + ": " + detail::describe(*s) + " instead of the " + stop, EINTR);
    }
  }
  auto regs = detail::get_gp(tid_);
  if (!regs) return std::move(regs).error();
  return long(regs->rax);
}

// A remote syscall ran past its bound (e.g. a read that blocks): interrupt it. The
// syscall returns (-EINTR or a restart code) and the thread stops at the
// syscall-exit stop, from where close() works as usual. If even that fails, the
// thread is given up (dead_): nothing more is done to it.
void Remote::stop_running_syscall() {
  if (::ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0) {
    dead_ = true;
    return;
  }
  auto s = detail::wait_stop(tid_, 2000, "the stop of an interrupted remote syscall");
  if (!s) dead_ = true;
  else if (s->kind == Stop::Signal) pending_sig_ = s->sig;
}

Result<uint64_t> Remote::scratch(size_t size) {
  const size_t page = 4096;
  size_t want = std::max(page, (size + page - 1) / page * page);
  if (scratch_ && scratch_size_ >= want) return scratch_;
  long r = scratch_ ? ENVRUN_TRY(syscall(SYS_mremap, scratch_, scratch_size_, want, MREMAP_MAYMOVE))
                    : ENVRUN_TRY(syscall(SYS_mmap, 0, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                         uint64_t(-1), 0));
  if (r < 0 && r > -4096)
    return detail::error(tid_, std::string(scratch_ ? "remote mremap" : "remote mmap") + " of " +
                                   std::to_string(want) + " scratch bytes: " + std::strerror(int(-r)), int(-r));
  scratch_ = uint64_t(r);
  scratch_size_ = want;
  return scratch_;
}

Result<uint64_t> Remote::put(size_t off, std::span<const uint8_t> bytes) {
  uint64_t base = ENVRUN_TRY(scratch(off + bytes.size()));
  ENVRUN_CHECK(write_mem(tid_, base + off, bytes));
  return base + off;
}

Result<uint64_t> Remote::put_string(size_t off, const std::string& s) {
  auto p = reinterpret_cast<const uint8_t*>(s.c_str());
  return put(off, std::span<const uint8_t>(p, s.size() + 1));
}

Result<void> Remote::use_syscall_at(uint64_t insn) {
  ENVRUN_CHECK(check_insn(tid_, insn));
  if (wrote_insn_) {
    ENVRUN_CHECK(write_mem(tid_, insn_, std::span<const uint8_t>(saved_bytes_, 2)));
    wrote_insn_ = false;
  }
  insn_ = insn;
  return ok();
}

// Keeps the first error while doing every remaining step.
static void keep_first(Result<void> r, Result<void>& first) {
  if (!r && first) first = std::move(r).error();
}

Result<void> Remote::close() {
  if (released_) return ok();
  Result<void> first;
  if (scratch_ && !dead_) {
    auto r = syscall(SYS_munmap, scratch_, scratch_size_);
    if (!r) keep_first(std::move(r).error(), first);
    else if (*r < 0) keep_first(detail::error(tid_, "remote munmap of the scratch area: " + std::string(std::strerror(int(-*r))), int(-*r)), first);
    scratch_ = 0;
  }
  released_ = true;
  if (dead_) return first;
  if (wrote_insn_) keep_first(write_mem(tid_, insn_, std::span<const uint8_t>(saved_bytes_, 2)), first);
  keep_first(detail::set_gp(tid_, saved_regs_.gp), first);
  keep_first(set_sigmask(tid_, saved_mask_), first);
  if (ran_ || pending_sig_) keep_first(detail::reach_event_stop(tid_, pending_sig_, kStopTimeoutMs), first);
  return first;
}

}  // namespace envrun::infect
