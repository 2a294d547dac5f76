// Hidden children of directories (hide_index.hpp).
#include "intercept/hide_index.hpp"

#include <string.h>

#include <atomic>

#include "intercept/lib_state.hpp"

namespace envrun::icpt {

namespace {

// 0 not built; 1 built, no hide rule; 2 built, some. The mask is written before the state.
constinit std::atomic<int> g_built{0};
constinit std::atomic<uint64_t> g_parents{0};

uint64_t bit(const char* s, size_t n) {
  uint32_t h = 2166136261u;  // FNV-1a of the directory path
  for (size_t i = 0; i < n; ++i) h = (h ^ uint8_t(s[i])) * 16777619u;
  return uint64_t(1) << (h & 63);
}

int build() {
  uint64_t mask = 0;
  bool any = false;
  const idb::DbView& db = g_state.db;
  for (uint32_t i = 0; g_state.db_ok && i < db.file_count(); ++i) {
    const idb::FileRule& r = db.files()[i];
    if (idb::FileMode(r.mode) != idb::FileMode::Hide || r.inside.len < 2) continue;
    const char* s = db.str(r.inside);
    size_t slash = r.inside.len;
    while (slash > 0 && s[slash - 1] != '/') --slash;  // s[0..slash-1) is the parent
    mask |= bit(s, slash > 1 ? slash - 1 : 1);
    any = true;
  }
  g_parents.store(mask, std::memory_order_relaxed);
  int state = any ? 2 : 1;
  g_built.store(state, std::memory_order_release);
  return state;
}

int state() {
  int s = g_built.load(std::memory_order_acquire);
  return s != 0 ? s : build();
}

int compare(const char* a, size_t na, const char* b, size_t nb) {
  int c = memcmp(a, b, na < nb ? na : nb);
  return c != 0 ? c : (na < nb ? -1 : na > nb ? 1 : 0);
}

// The first rule whose inside path is >= key.
uint32_t lower_bound(const char* key, size_t n) {
  const idb::DbView& db = g_state.db;
  uint32_t lo = 0, hi = db.file_count();
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const idb::FileRule& r = db.files()[mid];
    if (compare(db.str(r.inside), r.inside.len, key, n) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

}  // namespace

bool any_hide_rules() { return state() == 2; }

bool hidden_children(const char* dir, size_t n, HiddenRange* out) {
  if (state() != 2 || n == 0 || dir[0] != '/') return false;
  if (!(g_parents.load(std::memory_order_relaxed) & bit(dir, n))) return false;
  char prefix[PATH_MAX];
  size_t pre = n == 1 ? 1 : n + 1;  // "<dir>/", or "/" for the root
  if (pre >= sizeof prefix) return false;
  memcpy(prefix, dir, n);
  prefix[pre - 1] = '/';
  const idb::DbView& db = g_state.db;
  uint32_t first = lower_bound(prefix, pre);
  if (first < db.file_count() && db.files()[first].inside.len <= pre) ++first;  // the rule "/" itself
  uint32_t end = first;
  bool any = false;
  for (; end < db.file_count(); ++end) {
    const idb::FileRule& r = db.files()[end];
    if (r.inside.len <= pre || memcmp(db.str(r.inside), prefix, pre) != 0) break;
    if (idb::FileMode(r.mode) == idb::FileMode::Hide && memchr(db.str(r.inside) + pre, '/', r.inside.len - pre) == nullptr)
      any = true;
  }
  if (!any) return false;
  *out = HiddenRange{first, end, uint32_t(pre)};
  return true;
}

bool hidden_name(const HiddenRange& h, const char* name) {
  const idb::DbView& db = g_state.db;
  size_t k = strlen(name);
  uint32_t lo = h.first, hi = h.end;  // the names below one directory sort like their suffixes
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const idb::FileRule& r = db.files()[mid];
    int c = compare(db.str(r.inside) + h.pre, r.inside.len - h.pre, name, k);
    if (c == 0) return idb::FileMode(r.mode) == idb::FileMode::Hide;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return false;
}

}  // namespace envrun::icpt
