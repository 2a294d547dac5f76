// Lazy restore: the page server's watchdog, a second process holding the same
// userfaultfds (the server's own, and each one a fork event hands over, sent to it
// with SCM_RIGHTS). A userfaultfd stays open while either holds it, so faults wait
// instead of reading zero. When the server's socket to it closes without the server
// having said it is done (the server died: killed, crashed), the watchdog SIGKILLs
// the tree, waits for it to die, and only then lets the userfaultfds go.
#pragma once
#include <sys/types.h>

#include <vector>

#include "kernel/result.hpp"

namespace envrun::ckpt {

// In the page server process: forks the watchdog with copies of `uffds`.
Result<void> lazy_watchdog_start(const std::vector<int>& uffds, pid_t root);
// Hands one more userfaultfd to the watchdog (no-op without one).
void lazy_watchdog_hold(int uffd);
// The server is done (every page in, or the tree killed): the watchdog lets go, exits
// and is reaped.
void lazy_watchdog_done();

// SIGKILL to root and every descendant, then waits (up to 10 s each) until they are gone.
void kill_lazy_tree(pid_t root);

}  // namespace envrun::ckpt
