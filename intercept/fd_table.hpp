// The inside path of directory fds, for *at calls with a relative path: filled when an
// open through a rule succeeds, or on first use from /proc/self/fd/N (reverse-mapped);
// forgotten when the fd is closed (close, close_range, closedir, fclose, dup2 onto it).
// Internal to libenvrun-intercept.so; no allocation after one lazy mmap, no locks.
#pragma once
#include <cstddef>

namespace envrun::icpt {

inline constexpr int kFdTableSlots = 4096;  // fds above are looked up in /proc every time

// Remember that fd refers to the inside path `path` (len bytes, normalized).
void fdt_set(int fd, const char* path, size_t len);
// Forget fd (cheap when it was never remembered).
void fdt_forget(int fd);
void fdt_forget_range(unsigned first, unsigned last);
// newfd is now a duplicate of oldfd (dup, dup2, dup3, fcntl F_DUPFD): it shares its path.
void fdt_dup(int oldfd, int newfd);
// True when fd is known to be a directory no rule concerns (see dirfd_inside's *plain).
bool fdt_plain(int fd);
// True when fd has an entry for a path under a rule (a union candidate).
bool fdt_known(int fd);

// The inside path of fd into out (cap bytes, NUL-terminated). Returns its length, or a
// negative errno when fd names no directory path (socket, pipe, deleted, no /proc): the
// caller then passes the call through. *plain: no rule at or below that directory, and
// its real path is its inside path (relative names without ".." need no resolution).
long dirfd_inside(int fd, char* out, size_t cap, bool* plain);

}  // namespace envrun::icpt
