// File-descriptor events that the net interceptor needs from hooks it does not own.
// The meter tracks accepted connections (kConnectionsOpen/kConnectionsPeak) in a fixed
// bitmap of fds, and remembers the names of AF_UNIX sockets bound through the
// /proc/self/fd/<dir>/<name> trick; both must forget an fd when it is closed.
// Internal to libenvrun-intercept.so; async-signal-safe, no allocation, no locks.
#pragma once

namespace envrun::icpt {

// Call after a successful close(fd) (and for the target of a successful dup2/dup3, which
// closes it). Cheap when fd was never accepted or bound: one relaxed load.
void note_fd_closed(int fd);

// Call after a successful close_range(first, last, flags) without CLOSE_RANGE_CLOEXEC
// (last may be ~0u). Walks only the tracked fds in the range.
void note_fd_range_closed(unsigned first, unsigned last);

}  // namespace envrun::icpt
