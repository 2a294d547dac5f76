// Process primitives: clone3, pidfds, process identity (pid + start time).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::proc {

struct CloneResult {
  pid_t pid = -1;  // 0 in the child
  UniqueFd pidfd;  // parent only, when asked for
};

// clone3 without a new stack (fork semantics) with CLONE_* namespace flags.
// want_pidfd adds CLONE_PIDFD; cgroup_fd >= 0 adds CLONE_INTO_CGROUP (cgroup v2 only).
Result<CloneResult> clone3_fork(uint64_t flags, bool want_pidfd, int cgroup_fd = -1);

Result<UniqueFd> pidfd_open(pid_t pid);
Result<void> pidfd_signal(int pidfd, int sig);

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); nullopt if gone.
std::optional<uint64_t> start_time(pid_t pid);
// Process state letter from /proc/<pid>/stat ('R','S','Z',...); 0 if gone.
char state_letter(pid_t pid);
// True while <pid> exists with the given start time and is not a zombie.
bool alive(pid_t pid, uint64_t start_time);

// Wait (poll on a pidfd) until the process exits; false on timeout.
bool wait_exit(int pidfd, int timeout_ms);

// Signal name or number ("KILL", "SIGKILL", "9") -> number; -1 if unknown.
int signal_from_name(const std::string& s);

// The invoking user's home directory: $HOME, else the passwd entry of the effective uid, else "/".
std::string home_dir();
// The name of `uid` in /etc/passwd, or the number as text.
std::string user_name(uid_t uid);

}  // namespace envrun::proc
