// Names that `hide` rules take out of their parent directory's listing. Per DB, built on
// first use: a 64-bit Bloom mask of the parent directories of the hide rules, so that
// opening a directory with no hidden child costs one hash of its path (no rule at all:
// one load). The rules below a directory are one contiguous run of the sorted rule table.
// Internal to libenvrun-intercept.so; no allocation, no locks.
#pragma once
#include <cstddef>
#include <cstdint>

namespace envrun::icpt {

// The rules whose inside path lies below one directory (a run of the sorted table).
struct HiddenRange {
  uint32_t first = 0, end = 0;  // rule indexes [first, end)
  uint32_t pre = 0;             // bytes of their inside path that are "<dir>/"
};

// True when the DB has any hide rule (one load once built).
bool any_hide_rules();
// True when some hide rule names a direct child of the inside directory `dir` (absolute,
// normalized, n bytes); *out then says where to look for them.
bool hidden_children(const char* dir, size_t n, HiddenRange* out);
// True when `name` (a directory entry) is hidden by a rule of r.
bool hidden_name(const HiddenRange& r, const char* name);

}  // namespace envrun::icpt
