// The stub tree: forked copies of envrun that re-create the dumped tree's processes
// and threads with their pids, and the per-process state a process can set on itself.
#pragma once
#include <sys/types.h>

#include <functional>

#include "ckpt/restore_plan.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt {

// What a stub reports on the ready pipe once it is set up (or failed).
struct StubReady {
  int32_t pid = 0;  // image pid
  int32_t err = 0;  // errno, 0 = ready
  char msg[240] = {};
};

// fork-like clone3 with the child's pid in the innermost pid namespace set to `pid`
// (0: any) and extra CLONE_* flags; returns the child's pid (as the caller sees it),
// 0 in the child.
Result<pid_t> clone3_with_pid(pid_t pid, unsigned long flags);

// Runs in a forked stub: sets up process `idx` of the plan, forks its children (each
// runs stub_main too), reports on ready_fd, then waits to be taken over. Never returns.
[[noreturn]] void stub_main(const Plan& plan, size_t idx, int ready_fd,
                            const std::function<Result<void>()>& in_root_stub = {});

}  // namespace envrun::ckpt
