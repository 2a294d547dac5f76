// The test every path hook makes first, inline: true when no rule can apply to
// (dirfd, path), so the real function gets the caller's own arguments (no copy). It costs
// a few loads and one scan of the path; everything else is in resolve().
// Internal to libenvrun-intercept.so.
#pragma once
#include <fcntl.h>

#include "intercept/cwd.hpp"
#include "intercept/fd_table.hpp"
#include "intercept/lib_state.hpp"
#include "intercept/path_util.hpp"

namespace envrun::icpt {

// An absolute path whose first component starts no rule and that has no ".." to climb
// elsewhere.
inline bool abs_unruled(const char* p) {
  size_t c;
  if (g_state.db.first_component_may_match(p + 1, &c)) return false;
  if (c == 0 || (p[1] == '.' && (c == 1 || (c == 2 && p[2] == '.')))) return false;  // "//", "/.", "/.."
  return !has_dotdot(p + 1 + c);
}

// A relative path from the cwd "/": as abs_unruled, without the leading '/'.
inline bool rel_from_root_unruled(const char* p) {
  size_t c;
  if (g_state.db.first_component_may_match(p, &c)) return false;
  if (p[0] == '.' && (c == 1 || (c == 2 && p[1] == '.'))) return false;
  return !has_dotdot(p + c);
}

// redirect: whether the redirect interceptor is on (the caller may know it already).
inline bool rules_pass(bool redirect, int dirfd, const char* path) {
  if (!redirect || path == nullptr || path[0] == '\0') return true;
  if (path[0] == '/') return abs_unruled(path);
  if (dirfd == AT_FDCWD) {
    if (cwd_plain()) return !has_dotdot(path);
    return cwd_is_root() && rel_from_root_unruled(path);
  }
  return fdt_plain(dirfd) && !has_dotdot(path);
}

inline bool passes_through(int dirfd, const char* path) { return rules_pass(redirect_on(), dirfd, path); }

}  // namespace envrun::icpt
