// envrun_infect: taking over stopped threads of another process (x86_64).
// The checkpoint engine's only door into a target: seize and interrupt threads,
// read and write their registers (general, FPU/xstate), run single system calls
// inside them (remote syscalls), and read/write their memory. Like CRIU's compel,
// this is a library of its own with its own tests (tests/unit/test_infect.cpp).
//
// Rules every function keeps:
// - a thread handed to a Remote is in a ptrace stop and stays in one between calls;
// - a remote syscall runs with every signal blocked in the thread (so no handler of
//   the target runs), and the thread's registers and signal mask are put back after;
// - errors name the pid/tid and the operation: "infect: tid 123: PTRACE_SEIZE: ...".
#pragma once
#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kernel/result.hpp"

namespace envrun::infect {

// The complete user-visible CPU state of one thread.
struct ThreadRegs {
  user_regs_struct gp{};          // NT_PRSTATUS (includes fs_base, gs_base, orig_rax)
  std::vector<uint8_t> xstate;    // NT_X86_XSTATE as the kernel gives it (XSAVE layout)
};

// PTRACE_SEIZE every thread listed (options: PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL
// is NOT set: a checkpoint must not kill the target when envrun dies).
Result<void> seize(pid_t tid);
// PTRACE_INTERRUPT and wait until the thread is in a ptrace stop (group-stop or
// PTRACE_EVENT_STOP); signals that arrive meanwhile are left pending, not delivered.
// One exception, so that no signal is lost: a signal the thread had already dequeued
// when the interrupt came shows up as a signal-delivery-stop; it is handed back to
// the thread (PTRACE_CONT with it, as CRIU does) and the wait goes on, so the thread
// stops with that signal's handler frame set up but no handler instruction run (or
// in group-stop for a stop signal, or dead for a fatal one: then an error).
// Every wait is bounded (kStopTimeoutMs); an exited thread is an error, not a hang.
// All calls for one tid must come from the thread that seized it (ptrace's rule).
Result<void> interrupt(pid_t tid);
inline constexpr int kStopTimeoutMs = 10000;
// interrupt() in two halves, for a cgroup-frozen target: request the stop while the
// tasks are frozen, thaw, then wait (the stop comes right after the thaw, before any
// user code of the thread runs).
Result<void> interrupt_nowait(pid_t tid);
Result<void> wait_interrupted(pid_t tid, int timeout_ms = kStopTimeoutMs);
// PTRACE_DETACH with no signal; the thread continues where it stopped.
Result<void> detach(pid_t tid);

Result<ThreadRegs> get_regs(pid_t tid);
Result<void> set_regs(pid_t tid, const ThreadRegs& regs);

// Signal mask of a stopped thread (PTRACE_GETSIGMASK / PTRACE_SETSIGMASK).
Result<uint64_t> get_sigmask(pid_t tid);
Result<void> set_sigmask(pid_t tid, uint64_t mask);

// Pending signals of a stopped thread (PTRACE_PEEKSIGINFO, private queue when
// shared=false, the process-wide queue when shared=true), each as the raw 128-byte siginfo.
Result<std::vector<std::vector<uint8_t>>> peek_siginfo(pid_t tid, bool shared);

// Memory of any process we may ptrace. read/write use process_vm_readv/writev and
// fall back to /proc/PID/mem (which also writes read-only and PROT_NONE pages).
Result<void> read_mem(pid_t pid, uint64_t addr, std::span<uint8_t> out);
Result<void> write_mem(pid_t pid, uint64_t addr, std::span<const uint8_t> in);

// Address of the first bytes 0x0f 0x05 (`syscall`) in [start, end) of the target's
// memory (e.g. its [vdso]); an Error (ErrorKind::NotFound) when there is none.
Result<uint64_t> find_syscall_insn(pid_t pid, uint64_t start, uint64_t end);

// Runs system calls inside one stopped thread.
class Remote {
 public:
  // tid must already be seized and stopped. The Remote finds an executable place
  // in the target for its `syscall` instruction (it saves and restores the bytes
  // it overwrites) unless `syscall_insn` names an address that already holds
  // 0x0f 0x05 (then nothing is written).
  static Result<Remote> open(pid_t tid, uint64_t syscall_insn = 0);
  Remote(Remote&&) noexcept;
  Remote& operator=(Remote&&) noexcept;
  ~Remote();  // puts back the overwritten bytes, the registers and the signal mask

  // The destructor's work, with its first error reported (then the destructor does
  // nothing). Afterwards the thread is back in a PTRACE_EVENT_STOP with its own
  // registers and mask, so an interrupted syscall of its own restarts (or returns
  // EINTR to a handler) exactly as if it had never been touched.
  Result<void> close();
  // Bound of each wait for a syscall stop (default 30 s). A syscall still running at
  // the bound is interrupted (the thread is stopped again) and reported as an error.
  void set_timeout_ms(int ms) { timeout_ms_ = ms; }

  // Runs syscall `nr` with up to 6 arguments in the thread; returns the raw result
  // (negative errno values are returned as values, not as errors: the caller decides).
  // Result is an Error only when ptrace itself fails or the thread dies.
  Result<long> syscall(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                       uint64_t a4 = 0, uint64_t a5 = 0, uint64_t a6 = 0);

  // Scratch memory inside the target (an anonymous RW mapping the Remote creates on
  // first use with a remote mmap, at least `size` bytes, removed by the destructor
  // unless keep_scratch() was called). Used to pass structs and strings to syscalls.
  Result<uint64_t> scratch(size_t size);
  // Copies bytes into the scratch area at offset `off` and returns its remote address.
  Result<uint64_t> put(size_t off, std::span<const uint8_t> bytes);
  Result<uint64_t> put_string(size_t off, const std::string& s);

  // Moves the syscall instruction to `insn` (an address in the target that holds
  // 0x0f 0x05, e.g. one the caller wrote into a page it mapped), restoring the bytes
  // overwritten at the old place. Restore uses this before it unmaps the old text.
  Result<void> use_syscall_at(uint64_t insn);
  // Do not put back the original registers/mask/bytes at destruction (restore sets
  // the final state itself) and leave the scratch mapping alone.
  void release();

  pid_t tid() const { return tid_; }

 private:
  Remote() = default;
  void stop_running_syscall();
  pid_t tid_ = -1;
  uint64_t insn_ = 0;
  uint8_t saved_bytes_[8]{};
  bool wrote_insn_ = false;
  bool released_ = true;
  ThreadRegs saved_regs_;
  uint64_t saved_mask_ = 0;
  uint64_t scratch_ = 0;
  size_t scratch_size_ = 0;
  bool ran_ = false;      // the thread left its original stop (a syscall was stepped)
  bool dead_ = false;     // the thread exited or is lost: touch nothing any more
  int pending_sig_ = 0;   // a signal that broke a remote syscall; given back at close()
  int timeout_ms_ = 30000;
};

}  // namespace envrun::infect
