// The way back: real paths (under a rule's outside or upper directory) to inside paths,
// for getcwd, realpath, readlink of /proc/self/{cwd,exe,fd/N}, fd table fills.
#include <errno.h>

#include "intercept/resolve_internal.hpp"

namespace envrun::icpt {

bool dir_plain(const char* dir, size_t n) {
  if (!g_state.db_ok) return true;
  return g_state.db.match(dir, n) == nullptr && !g_state.db.has_rule_at_or_below(dir, n);
}

bool prefix_ruled(const char* s, size_t n) { return g_state.db_ok && g_state.db.match(s, n) != nullptr; }

long to_inside(const char* real, char* out, size_t cap) {
  if (!g_state.db_ok || real == nullptr || real[0] != '/') return -1;
  size_t len = strlen(real);
  const idb::DbView& db = g_state.db;
  const idb::FileRule* o = db.match_reverse(real, len, false);
  const idb::FileRule* u = db.match_reverse(real, len, true);
  const idb::FileRule* r = o;
  size_t dlen = o ? o->outside.len : 0;
  if (u != nullptr && (o == nullptr || u->upper.len > dlen)) {
    r = u;
    dlen = u->upper.len;
  }
  if (r == nullptr || idb::FileMode(r->mode) == idb::FileMode::Hide) return -1;
  if (dlen == 1) dlen = 0;  // a layer at "/": all of real is the rest
  const char* rest = real + dlen;
  size_t rlen = len - dlen;
  if (rlen > 0 && rest[rlen - 1] == '/') --rlen;
  size_t pre = rule_prefix(*r);
  if (pre + rlen == 0) return concat(out, cap, "/", 1, "", 0) < 0 ? -1 : 1;
  long n = concat(out, cap, db.str(r->inside), pre, rest, rlen);
  return n < 0 ? -1 : n;
}

}  // namespace envrun::icpt
