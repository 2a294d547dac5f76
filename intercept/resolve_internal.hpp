// Internals shared by the resolver's files (resolve*.cpp, copy_up.cpp, dir_union.cpp).
// Internal to libenvrun-intercept.so.
#pragma once
#include "intercept/layer_fds.hpp"
#include "intercept/lib_state.hpp"
#include "intercept/path_util.hpp"
#include "intercept/resolve.hpp"

namespace envrun::icpt {

inline constexpr int kMaxSymlinks = 40;
inline constexpr int kRestart = 1;  // a symlink rewrote the inside path: resolve it again
inline constexpr char kWhiteoutPrefix[] = ".wh.";
inline constexpr char kOpaqueMarker[] = ".wh..wh..opq";

// No rule at or below the inside directory `dir` (normalized).
bool dir_plain(const char* dir, size_t n);

// Bytes of a matching inside path that the rule's inside covers ("/" covers none).
inline size_t rule_prefix(const idb::FileRule& r) { return r.inside.len == 1 ? 0 : r.inside.len; }

// The directory of a layer of r, with "/" given as the empty prefix (len 0).
inline const char* layer_dir(const idb::FileRule& r, Layer layer, size_t* len) {
  idb::Str s = layer == Layer::Upper ? r.upper : r.outside;
  *len = s.len == 1 ? 0 : s.len;
  return g_state.db.str(s);
}

// Whether the name was found in a layer.
enum class Place : unsigned char { Found, Missing, Other };

// One resolution in progress: the inside path (a symlink rewrites it and asks for a
// restart), the symlinks followed so far, whether a final symlink is followed.
struct Walk {
  InsidePath* in;
  int links = 0;
  bool follow = true;
  bool follow_last() const { return follow || in->trailing; }
  const char* rest(const idb::FileRule& r) const { return in->s + rule_prefix(r); }
  size_t rest_len(const idb::FileRule& r) const { return in->n - rule_prefix(r); }
};

// out = the layer's path of w's inside path (no check). 0 or -ENAMETOOLONG.
int layer_path(const idb::FileRule& r, Layer layer, const Walk& w, Resolved& out);

// A symlink with `target` was met at rest[cs..ce) of w's path: rewrite w's inside path to
// the target taken as an inside path, followed by the rest. kRestart or -ELOOP/-errno.
int follow_link(const idb::FileRule& r, Walk& w, size_t cs, size_t ce, const char* target, size_t tlen);

// out = the layer's path of w's inside path (for Layer::Host the inside path itself), and
// where it stands: found, missing (ENOENT), or another error the real call will report.
// The path is checked to stay beneath the layer directory (openat2 RESOLVE_BENEATH, then a
// component walk where symlink targets are inside paths). Returns 0, kRestart or -errno.
int place_layer(const idb::FileRule& r, Layer layer, Walk& w, Resolved& out, Place* where);

// The writecopy rule's resolution for op (resolve_wc.cpp). Returns 0, kRestart or -errno.
int wc_resolve(const idb::FileRule& r, Walk& w, Op op, int oflags, Resolved& out);

// What the upper layer says about a writecopy path (resolve_wc.cpp).
enum class Upper : unsigned char { Found, Whiteout, Absent };
struct UpperLook {
  Upper state = Upper::Absent;
  size_t depth = 0;     // Whiteout/Absent: bytes of rest that exist in upper as directories
  bool last = false;    // Whiteout: it is the final component that is whited out
};
int wc_look_upper(const idb::FileRule& r, Walk& w, UpperLook& look);

// Copy the lower object at w's path up into upper (parents included, modes kept; content
// unless `empty`), leaving out = its upper path. 0 or -errno (copy_up.cpp).
int copy_up(const idb::FileRule& r, Walk& w, size_t depth, bool empty, Resolved& out);
// Create the upper parents of w's path from `depth` bytes of rest on (their modes are the
// lower directories'). 0 or -errno; -ENOENT when a parent exists in no layer.
int make_upper_parents(const idb::FileRule& r, Walk& w, size_t depth);
// Create the whiteout of w's final component in upper (parents made first).
int make_whiteout(const idb::FileRule& r, Walk& w, size_t depth);
// Remove the whiteout of w's final component if there is one; true when there was.
bool drop_whiteout(const idb::FileRule& r, Walk& w);

// Resolve the caller's (dirfd, path) to a normalized inside path. 0: `in` holds it;
// 1: nothing to do (no rule can be involved: pass the caller's arguments through);
// -errno otherwise. *base_real: the caller's own arguments mean the same to the kernel
// as `in` (absolute, or relative to a directory whose real path is its inside path).
int inside_of(int dirfd, const char* path, InsidePath& in, bool* base_real);

// The common resolution once the inside path is known (resolve.cpp).
int resolve_inside(InsidePath& in, Op op, int at_flags, int oflags, bool base_real, Resolved& out);

// The op of an open with these flags, and its at_flags (O_NOFOLLOW).
Op open_op(int flags, int* at_flags);

// Reset out to "not redirected" (the caller's own dirfd and path).
inline void reset_resolved(Resolved& out, int dirfd, const char* path) {
  out.path = path;
  out.dirfd = dirfd;
  out.rule = nullptr;
  out.redirected = false;
  out.where = Where::Host;
  out.over_whiteout = false;
  out.rest_off = 0;
}

// True when op changes something (readonly rules refuse it).
inline bool op_modifies(Op op) {
  return op == Op::Write || op == Op::Create || op == Op::Remove || op == Op::Modify || op == Op::Replace;
}

}  // namespace envrun::icpt
