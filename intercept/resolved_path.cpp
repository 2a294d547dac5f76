// resolved_path_string(): a Resolved (dirfd, path) as one stand-alone path.
#include "intercept/resolved_path.hpp"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "intercept/sys.hpp"

namespace envrun::icpt {

size_t format_uint(unsigned v, char* out) {
  char tmp[10];
  size_t n = 0;
  do tmp[n++] = char('0' + v % 10); while ((v /= 10) != 0);
  for (size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}

long resolved_path_string(const Resolved& r, char* out, size_t cap) {
  size_t plen = strlen(r.path);
  if (r.dirfd == AT_FDCWD || r.path[0] == '/') {
    if (plen + 1 > cap) return -ENAMETOOLONG;
    memcpy(out, r.path, plen + 1);
    return long(plen);
  }
  char link[32] = "/proc/self/fd/";
  size_t k = strlen(link);
  link[k + format_uint(unsigned(r.dirfd), link + k)] = '\0';
  long n = sys::readlinkat(AT_FDCWD, link, out, cap);
  if (n < 0) return n;
  if (size_t(n) >= cap || n == 0 || out[0] != '/') return -ENAMETOOLONG;  // too long, or not a path
  bool self = plen == 0 || (plen == 1 && r.path[0] == '.');
  if (self) {
    out[n] = '\0';
    return n;
  }
  bool slash = out[n - 1] == '/';
  if (size_t(n) + !slash + plen + 1 > cap) return -ENAMETOOLONG;
  if (!slash) out[n++] = '/';
  memcpy(out + n, r.path, plen + 1);
  return long(size_t(n) + plen);
}

}  // namespace envrun::icpt
