// Lexical path helpers of the resolver: normalization into caller buffers, joins, tests.
// No allocation; lengths are checked against the buffer (results -ENAMETOOLONG).
// Internal to libenvrun-intercept.so.
#pragma once
#include <limits.h>
#include <string.h>

#include <cstddef>

namespace envrun::icpt {

// A normalized absolute path: no "//", "." or ".." components, no trailing '/' (except "/").
// `trailing` remembers that the caller's path ended with '/' (or "/.", "/.."): the final
// component must then be a directory, which the real call checks when we keep the '/'.
struct InsidePath {
  char s[PATH_MAX];
  size_t n = 0;
  bool trailing = false;
  bool climbed_out = false;  // a ".." left a directory under a rule (see prefix_ruled)
};

// True when the inside directory s[0..n) lies under a rule (defined by the resolver). A
// path that climbs out of such a directory with ".." means something else to the kernel,
// so the caller's own string cannot be handed on even when the result is under no rule.
bool prefix_ruled(const char* s, size_t n);

// Normalize `in` (len bytes, absolute or not: components are appended to out's current
// contents, which must be normalized). Returns 0 or -ENAMETOOLONG.
int append_normalized(InsidePath& out, const char* in, size_t len);

// out = normalize(in), in absolute.
inline int normalize_abs(InsidePath& out, const char* in, size_t len) {
  out.s[0] = '/';
  out.s[1] = '\0';
  out.n = 1;
  out.trailing = false;
  out.climbed_out = false;
  return append_normalized(out, in, len);
}

// out = normalize(base + "/" + rel); base absolute and normalized (blen bytes).
inline int join_normalized(InsidePath& out, const char* base, size_t blen, const char* rel, size_t rlen) {
  if (blen + 1 > sizeof out.s) return -36;  // ENAMETOOLONG
  memcpy(out.s, base, blen);
  out.s[blen] = '\0';
  out.n = blen;
  out.trailing = false;
  out.climbed_out = false;
  return append_normalized(out, rel, rlen);
}

// True when the path has a ".." component (it may climb out of a directory). strchr is
// vectorized; most paths have no '.' at all, or one before an extension.
inline bool has_dotdot(const char* p) {
  for (const char* q = strchr(p, '.'); q != nullptr; q = strchr(q + 1, '.'))
    if (q[1] == '.' && (q == p || q[-1] == '/') && (q[2] == '\0' || q[2] == '/')) return true;
  return false;
}

// Length of the first component of an absolute path ("/usr/lib" -> 3); 0 for "/" or "//x".
inline size_t first_component_len(const char* p) {
  size_t e = 1;
  while (p[e] != '\0' && p[e] != '/') ++e;
  return e - 1;
}

// dst = a + b (+ c), NUL-terminated; -ENAMETOOLONG when it does not fit in cap.
inline long concat(char* dst, size_t cap, const char* a, size_t an, const char* b, size_t bn,
                   const char* c = "", size_t cn = 0) {
  if (an + bn + cn + 1 > cap) return -36;
  memmove(dst, a, an);  // a may be dst itself
  memcpy(dst + an, b, bn);
  memcpy(dst + an + bn, c, cn);
  dst[an + bn + cn] = '\0';
  return long(an + bn + cn);
}

}  // namespace envrun::icpt
