// Internals of envrun_infect shared by its files: error text, bounded waits for
// ptrace stops, general registers alone, and the target's executable mappings.
#pragma once
#include <sys/types.h>
#include <sys/user.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "kernel/result.hpp"

namespace envrun::infect::detail {

// "infect: tid 123: PTRACE_SEIZE: No such process"
Error sys_error(pid_t tid, const std::string& op, int e = errno);
// "infect: tid 123: <what>" with the given errno (0: not a system error).
Error error(pid_t tid, const std::string& what, int e = 0);

// One ptrace stop as waitpid reported it.
struct Stop {
  enum Kind { Event, Syscall, Signal } kind = Event;
  int sig = 0;    // WSTOPSIG without the 0x80 of a syscall stop
  int event = 0;  // status >> 16 (PTRACE_EVENT_STOP for interrupt and group stops)
};
std::string describe(const Stop& s);

// waitpid(tid, __WALL) until a stop, bounded by timeout_ms. An exit of the thread,
// a zombie that will never stop, or the bound become Errors naming tid and `what`
// (errno ESRCH for the first two, ETIMEDOUT for the bound).
Result<Stop> wait_stop(pid_t tid, int timeout_ms, const std::string& what);
// True when an Error from wait_stop means the thread is gone.
inline bool is_gone(const Error& e) { return e.sys_errno == ESRCH || e.sys_errno == ECHILD; }

// The thread is in some ptrace stop; bring it into a PTRACE_EVENT_STOP (or group
// stop), resuming it with `sig` first (0: none). Signal stops met on the way are
// handed back to the thread (see interrupt() in infect.hpp).
Result<void> reach_event_stop(pid_t tid, int sig, int timeout_ms);

Result<user_regs_struct> get_gp(pid_t tid);
Result<void> set_gp(pid_t tid, const user_regs_struct& gp);

struct Mapping {
  uint64_t start = 0, end = 0;
  std::string perms;  // "r-xp"
  std::string name;   // path, "[vdso]", "" for anonymous
};
Result<std::vector<Mapping>> read_maps(pid_t pid);

// Where a Remote can run `syscall`: an existing 0x0f 0x05 ([vdso] first, then any
// readable executable mapping), or else the start of the first executable mapping,
// which must then be overwritten (must_write).
struct SyscallPlace {
  uint64_t addr = 0;
  bool must_write = false;
};
Result<SyscallPlace> choose_syscall_place(pid_t pid);

}  // namespace envrun::infect::detail
