// A small fixed cache of directories a writecopy rule's lower layer (its outside, a bundle
// layer that does not change while the instance runs) does not have: a new name below one
// of them cannot exist in lower, so its create needs no lookup there (tar into a writecopy
// tree: one lookup per new directory instead of three calls per new file). Direct-mapped,
// one 64-bit word per slot (hash of rule + path + generation): lock-free, no allocation.
// Internal to libenvrun-intercept.so.
#pragma once
#include <cstddef>

#include "intercept/db_format.h"

namespace envrun::icpt {

// True when lower is known to have no directory at rest[0..n) of rule r.
bool lower_absent_known(const idb::FileRule& r, const char* rest, size_t n);
// Remember that lower has nothing at rest[0..n).
void lower_absent_note(const idb::FileRule& r, const char* rest, size_t n);
// Forget everything (a layer directory was replaced).
void lower_absent_reset();

}  // namespace envrun::icpt
