// Lexical normalization (path_util.hpp).
#include "intercept/path_util.hpp"

#include <errno.h>

namespace envrun::icpt {

int append_normalized(InsidePath& out, const char* in, size_t len) {
  size_t i = 0;
  bool last_was_dir_ref = false;  // the path ended with "/", "." or ".."
  while (i < len) {
    while (i < len && in[i] == '/') ++i;
    size_t s = i;
    while (i < len && in[i] != '/') ++i;
    size_t c = i - s;
    last_was_dir_ref = (i < len);  // a '/' follows this component
    if (c == 0) {
      last_was_dir_ref = true;
      continue;
    }
    if (c == 1 && in[s] == '.') {
      last_was_dir_ref = true;
      continue;
    }
    if (c == 2 && in[s] == '.' && in[s + 1] == '.') {
      if (!out.climbed_out && out.n > 1 && prefix_ruled(out.s, out.n)) out.climbed_out = true;
      while (out.n > 1 && out.s[out.n - 1] != '/') --out.n;
      if (out.n > 1) --out.n;  // drop the '/' too, except the root's
      out.s[out.n] = '\0';
      last_was_dir_ref = true;
      continue;
    }
    size_t need = out.n + (out.n > 1) + c;
    if (need + 1 > sizeof out.s) return -ENAMETOOLONG;
    if (out.n > 1) out.s[out.n++] = '/';
    memcpy(out.s + out.n, in + s, c);
    out.n += c;
    out.s[out.n] = '\0';
  }
  out.trailing = last_was_dir_ref && out.n > 1;
  return 0;
}

}  // namespace envrun::icpt
