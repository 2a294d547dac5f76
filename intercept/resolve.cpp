// The path resolver of the redirect interceptor (intercept/README.md, "Path resolution"):
// steps 1-4 here; the layer walk (step 5) in resolve_layer.cpp; writecopy in resolve_wc.cpp.
#include "intercept/resolve.hpp"

#include <errno.h>

#include "intercept/cwd.hpp"
#include "intercept/fast_path.hpp"
#include "intercept/fd_table.hpp"
#include "intercept/chain.hpp"
#include "intercept/resolve_internal.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

namespace {

// The merge rule: outside when the name is there, else the host path; new names go to
// outside, whose missing parents are made like the host's.
int make_merge_parents(const idb::FileRule& r, Walk& w) {
  size_t dlen;
  const char* dir = layer_dir(r, Layer::Outside, &dlen);
  const char* rest = w.rest(r);
  size_t rlen = w.rest_len(r);
  char o[PATH_MAX], h[PATH_MAX];
  if (dlen + rlen + 1 > sizeof o) return -ENAMETOOLONG;
  struct stat st;
  if (dlen > 0 && sys::fstatat(AT_FDCWD, dir, &st, 0) != 0) {
    int e = sys::mkdirat(AT_FDCWD, dir, 0755);  // the rule's own directory, made on demand
    if (e < 0 && e != -EEXIST) return e;
  }
  memcpy(o, dir, dlen);
  for (size_t i = 1; i < rlen; ++i) {  // each parent directory of the final component
    if (rest[i] != '/') continue;
    memcpy(o + dlen, rest, i);
    o[dlen + i] = '\0';
    if (sys::fstatat(AT_FDCWD, o, &st, AT_SYMLINK_NOFOLLOW) == 0) continue;
    size_t pre = rule_prefix(r) + i;  // the host directory at the same inside path
    memcpy(h, w.in->s, pre);
    h[pre] = '\0';
    if (sys::fstatat(AT_FDCWD, h, &st, 0) != 0 || !S_ISDIR(st.st_mode)) return 0;  // real call: ENOENT
    int e = sys::mkdirat(AT_FDCWD, o, st.st_mode & 07777);
    if (e < 0 && e != -EEXIST) return e;
  }
  return 0;
}

int merge_resolve(const idb::FileRule& r, Walk& w, Op op, Resolved& out) {
  Place p;
  int rc = place_layer(r, Layer::Outside, w, out, &p);
  if (rc != 0 || p != Place::Missing) return rc;
  Place hp;
  rc = place_layer(r, Layer::Host, w, out, &hp);
  if (rc != 0 || hp != Place::Missing || (op != Op::Create && op != Op::Replace)) return rc;
  rc = make_merge_parents(r, w);
  if (rc < 0) return rc;
  return place_layer(r, Layer::Outside, w, out, &p);
}

int apply_rule(const idb::FileRule& r, Walk& w, Op op, int oflags, Resolved& out) {
  Place p;
  switch (idb::FileMode(r.mode)) {
    case idb::FileMode::Hide:
      note_denied();
      return -ENOENT;
    case idb::FileMode::ReadOnly:
      if (op_modifies(op)) {
        note_denied();
        return -EROFS;
      }
      [[fallthrough]];
    case idb::FileMode::Override:
      return place_layer(r, Layer::Outside, w, out, &p);
    case idb::FileMode::Merge:
      return merge_resolve(r, w, op, out);
    case idb::FileMode::WriteCopy:
      return wc_resolve(r, w, op, oflags, out);
  }
  return -EINVAL;
}

bool follows_final(Op op, int at_flags, int oflags) {
  if (at_flags & AT_SYMLINK_NOFOLLOW) return false;
  if (op == Op::Remove || op == Op::Replace) return false;
  if (op == Op::Create) return (oflags & O_CREAT) && !(oflags & O_EXCL);  // open(O_CREAT) follows
  return true;
}

}  // namespace

int inside_of(int dirfd, const char* path, InsidePath& in, bool* base_real) {
  if (path == nullptr || path[0] == '\0') return 1;  // EFAULT/ENOENT/AT_EMPTY_PATH: the kernel's
  if (path[0] == '/' && abs_unruled(path)) return 1;
  size_t plen = strlen(path);
  if (path[0] == '/') {
    *base_real = true;
    return normalize_abs(in, path, plen);
  }
  char base[PATH_MAX];
  long blen;
  bool plain;
  if (dirfd == AT_FDCWD) {
    plain = cwd_plain();
    if (plain ? !has_dotdot(path) : cwd_is_root() && rel_from_root_unruled(path)) return 1;
    blen = cwd_copy(base, sizeof base);
  } else {
    blen = dirfd_inside(dirfd, base, sizeof base, &plain);
    if (blen < 0) return 1;  // not a directory we can name: the kernel decides
    if (plain && !has_dotdot(path)) return 1;
  }
  if (blen <= 0 || base[0] != '/') return 1;
  // the kernel reads the caller's relative path from the real directory: the same one
  // unless that directory lies under a rule
  *base_real = plain || g_state.db.match(base, size_t(blen)) == nullptr;
  return join_normalized(in, base, size_t(blen), path, plen);
}

int resolve_inside(InsidePath& in, Op op, int at_flags, int oflags, bool base_real, Resolved& out) {
  Walk w{&in};
  w.follow = follows_final(op, at_flags, oflags);
  for (;;) {
    const idb::FileRule* r = g_state.db.match(in.s, in.n);
    if (r == nullptr) {
      if (base_real && w.links == 0 && !in.climbed_out) return 0;  // the caller's own arguments
      long n = concat(out.buf, sizeof out.buf, in.s, in.n, "/", in.trailing);
      if (n < 0) return int(n);
      out.path = out.buf;
      out.dirfd = AT_FDCWD;
      out.redirected = true;
      return 0;
    }
    out.rule = r;
    int rc = apply_rule(*r, w, op, oflags, out);
    if (rc == kRestart) {
      out.rule = nullptr;
      if (w.links > kMaxSymlinks) return -ELOOP;
      continue;
    }
    if (rc == 0) {
      out.redirected = true;
      note_redirected();
    }
    return rc;
  }
}

static int resolve_with(int dirfd, const char* path, Op op, int at_flags, int oflags, Resolved& out) {
  reset_resolved(out, dirfd, path);
  if (!redirect_on()) return 0;
  InsidePath in;
  bool base_real = false;
  int rc = inside_of(dirfd, path, in, &base_real);
  if (rc != 0) return rc > 0 ? 0 : rc;
  return resolve_inside(in, op, at_flags, oflags, base_real, out);
}

int resolve(int dirfd, const char* path, Op op, int at_flags, Resolved& out) {
  return resolve_with(dirfd, path, op, at_flags, 0, out);
}

Op open_op(int flags, int* at_flags) {
  *at_flags = (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0;
  if ((flags & O_TMPFILE) == O_TMPFILE) return Op::Modify;  // a new file in that directory
  if (flags & O_CREAT) return Op::Create;
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND))) return Op::Write;
  return Op::Read;
}

int resolve_open(int dirfd, const char* path, int flags, Resolved& out) {
  int at_flags;
  Op op = open_op(flags, &at_flags);
  return resolve_with(dirfd, path, op, at_flags, flags, out);
}

long result_inside(const Resolved& r, char* buf, size_t cap) {
  if (r.rule == nullptr) return -EINVAL;
  const char* rest = r.buf + r.rest_off;
  size_t rlen = strlen(rest);
  if (rlen > 0 && rest[rlen - 1] == '/') --rlen;
  size_t pre = rule_prefix(*r.rule);
  if (pre == 0 && rlen == 0) return concat(buf, cap, "/", 1, "", 0);
  return concat(buf, cap, g_state.db.str(r.rule->inside), pre, rest, rlen);
}

}  // namespace envrun::icpt
