// The virtual working directory: the inside path the application believes it is in.
// chdir/fchdir update it (the process's real cwd is the resolved directory); getcwd
// returns it; relative paths are joined to it. Internal to libenvrun-intercept.so.
#pragma once
#include <cstddef>

namespace envrun::icpt {

// From the real cwd (reverse-mapped through the rules). Called once by init.
void cwd_init();
// After a successful chdir to the inside path `path` (normalized, len bytes).
void cwd_set(const char* path, size_t len);
// After a successful fchdir or any change we cannot name: recompute from the real cwd.
void cwd_refresh();
// True when relative paths need no resolution (no rule at or below the cwd; the real cwd
// is the inside one) unless they climb with "..".
bool cwd_plain();
// True when the cwd is "/" (real and inside) and no rule is at "/": a relative path is then
// the absolute one without its '/', and the first-component test applies to it.
bool cwd_is_root();
// Copy the inside cwd into out (cap bytes, NUL-terminated); returns its length or -ERANGE.
long cwd_copy(char* out, size_t cap);

}  // namespace envrun::icpt
