// One string for a resolved path: the redirect resolver may answer (rule root dirfd,
// relative path); exec, dlopen and AF_UNIX addresses need a path that stands alone.
// Internal to libenvrun-intercept.so; no allocation.
#pragma once
#include <cstddef>

#include "intercept/resolve.hpp"

namespace envrun::icpt {

// Writes the path of `r` into out (cap bytes, NUL-terminated): r.path itself when it is
// absolute or relative to the cwd (dirfd AT_FDCWD), else the directory of r.dirfd (from
// /proc/self/fd) joined with r.path. Returns its length, or -errno (-ENAMETOOLONG).
long resolved_path_string(const Resolved& r, char* out, size_t cap);

// Decimal digits of v (v >= 0) into out; returns the count (at most 10).
size_t format_uint(unsigned v, char* out);

}  // namespace envrun::icpt
