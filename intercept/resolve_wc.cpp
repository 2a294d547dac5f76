// The writecopy rule: upper + rest when it exists there; a whiteout `upper/dir/.wh.NAME`
// (or an opaque directory, marked by `.wh..wh..opq`) hides the lower name; else the lower
// path (outside + rest, or the host path). Modifications copy the lower object up first.
#include <errno.h>
#include <linux/openat2.h>

#include "intercept/lower_absent.hpp"
#include "intercept/resolve_internal.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

namespace {

// buf = "<upper>/<rest up to the final component>/.wh.<final component>"
long whiteout_path(const idb::FileRule& r, const Walk& w, char* buf, size_t cap) {
  size_t dlen;
  const char* dir = layer_dir(r, Layer::Upper, &dlen);
  const char* rest = w.rest(r);
  size_t rlen = w.rest_len(r);
  size_t slash = rlen;
  while (slash > 0 && rest[slash - 1] != '/') --slash;  // rest[slash..] is the final name
  if (slash == 0 || slash == rlen) return -EINVAL;
  long n = concat(buf, cap, dir, dlen, rest, slash, kWhiteoutPrefix, sizeof kWhiteoutPrefix - 1);
  if (n < 0) return n;
  return concat(buf, cap, buf, size_t(n), rest + slash, rlen - slash);
}

// Make the upper directory itself (and its parents) when it does not exist yet.
int make_upper_root(const idb::FileRule& r) {
  if (layer_root_fd(r, Layer::Upper) >= 0) return 0;
  char p[PATH_MAX];
  long n = concat(p, sizeof p, g_state.db.str(r.upper), r.upper.len, "", 0);
  if (n <= 1) return -ENOENT;
  for (long i = 1; i <= n; ++i) {
    if (i < n && p[i] != '/') continue;
    p[i] = '\0';
    int e = sys::mkdirat(AT_FDCWD, p, 0755);
    if (e < 0 && e != -EEXIST) return e;
    if (i < n) p[i] = '/';
  }
  int fd = layer_root_fd(r, Layer::Upper);
  return fd < 0 ? fd : 0;
}

}  // namespace

int wc_look_upper(const idb::FileRule& r, Walk& w, UpperLook& look) {
  look = UpperLook{};
  int root = layer_root_fd(r, Layer::Upper);
  if (root < 0) return 0;  // no upper yet: nothing there
  const char* rest = w.rest(r);
  size_t rlen = w.rest_len(r);
  if (rlen == 0) {
    look.state = Upper::Found;
    return 0;
  }
  int cur = root;
  int rc = 0;
  size_t i = 0;
  while (i < rlen) {
    while (i < rlen && rest[i] == '/') ++i;
    size_t cs = i;
    while (i < rlen && rest[i] != '/') ++i;
    size_t ce = i;
    bool last = ce >= rlen;
    char name[NAME_MAX + 1 + sizeof kWhiteoutPrefix];
    if (ce - cs > NAME_MAX) {
      rc = -ENAMETOOLONG;
      break;
    }
    memcpy(name, kWhiteoutPrefix, sizeof kWhiteoutPrefix - 1);
    char* bare = name + sizeof kWhiteoutPrefix - 1;
    memcpy(bare, rest + cs, ce - cs);
    bare[ce - cs] = '\0';
    struct stat st;
    int e = sys::fstatat(cur, bare, &st, AT_SYMLINK_NOFOLLOW);
    if (e == 0) {
      if (S_ISLNK(st.st_mode) && (!last || w.follow_last())) {
        char target[PATH_MAX];
        long n = sys::readlinkat(cur, bare, target, sizeof target - 1);
        if (n > 0) {
          target[n] = '\0';
          rc = follow_link(r, w, cs, ce, target, size_t(n));
          break;
        }
      }
      if (last || !S_ISDIR(st.st_mode)) {  // a non-directory on the way: ENOTDIR from the real call
        look.state = Upper::Found;
        break;
      }
      int next = sys::openat(cur, bare, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) {
        look.state = Upper::Found;  // let the real call report it
        break;
      }
      if (cur != root) sys::close(cur);
      cur = next;
      continue;
    }
    look.depth = cs - 1;
    look.last = last;
    if (sys::exists_nofollow(cur, name) == 0 || sys::exists_nofollow(cur, kOpaqueMarker) == 0)
      look.state = Upper::Whiteout;
    break;
  }
  if (cur != root) sys::close(cur);
  return rc;
}

int make_upper_parents(const idb::FileRule& r, Walk& w, size_t depth) {
  int rc = make_upper_root(r);
  if (rc < 0) return rc;
  size_t udlen;
  const char* udir = layer_dir(r, Layer::Upper, &udlen);
  Layer lower = r.outside.len ? Layer::Outside : Layer::Host;
  size_t ldlen = 0;
  const char* ldir = lower == Layer::Host ? g_state.db.str(r.inside) : layer_dir(r, lower, &ldlen);
  if (lower == Layer::Host) ldlen = rule_prefix(r);
  const char* rest = w.rest(r);
  size_t rlen = w.rest_len(r);
  char u[PATH_MAX], l[PATH_MAX];
  if (udlen + rlen + 1 > sizeof u || ldlen + rlen + 1 > sizeof l) return -ENAMETOOLONG;
  memcpy(u, udir, udlen);
  memcpy(l, ldir, ldlen);
  for (size_t i = depth + 1; i < rlen; ++i) {
    if (rest[i] != '/') continue;
    memcpy(u + udlen, rest, i);
    u[udlen + i] = '\0';
    memcpy(l + ldlen, rest, i);
    l[ldlen + i] = '\0';
    struct stat st;
    if (sys::fstatat(AT_FDCWD, l, &st, 0) != 0 || !S_ISDIR(st.st_mode)) return -ENOENT;
    int e = sys::mkdirat(AT_FDCWD, u, st.st_mode & 07777);
    if (e == -EEXIST) continue;
    if (e < 0) return e;
    if (sys::getuid() == 0) sys::fchownat(AT_FDCWD, u, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
  }
  return 0;
}

int make_whiteout(const idb::FileRule& r, Walk& w, size_t depth) {
  int rc = make_upper_parents(r, w, depth);
  if (rc < 0) return rc;
  char p[PATH_MAX];
  long n = whiteout_path(r, w, p, sizeof p);
  if (n < 0) return int(n);
  int fd = sys::openat(AT_FDCWD, p, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fd;
  sys::close(fd);
  return 0;
}

bool drop_whiteout(const idb::FileRule& r, Walk& w) {
  char p[PATH_MAX];
  if (whiteout_path(r, w, p, sizeof p) < 0) return false;
  return sys::unlinkat(AT_FDCWD, p, 0) == 0;
}

namespace {

// Whether lower has a directory at rest[0..n) of r (an outside layer only: the host is not
// cached): Missing when the lookup fails with ENOENT/ENOTDIR (then remembered), else Found
// or Other.
Place lower_dir(const idb::FileRule& r, const char* rest, size_t n) {
  if (lower_absent_known(r, rest, n)) return Place::Missing;
  int root = layer_root_fd(r, Layer::Outside);
  if (root < 0 || n < 2 || n > PATH_MAX - 1) return Place::Other;
  char dir[PATH_MAX];
  memcpy(dir, rest + 1, n - 1);
  dir[n - 1] = '\0';
  int fd = sys::openat2(root, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
  if (fd >= 0) {
    sys::close(fd);
    return Place::Found;
  }
  if (fd != -ENOENT && fd != -ENOTDIR) return Place::Other;
  lower_absent_note(r, rest, n);
  return Place::Missing;
}

// A new name that lower does not have, in a directory upper already has: no whiteout or
// opaque marker can matter, so the name goes to upper (tar, sqlite's journals, ...). When
// lower has no parent directory at all (remembered per directory, lower_absent.hpp), no
// system call is made here: the parent exists only in upper, or nowhere (ENOENT from the
// real call is then the right answer). Returns 0 (out set), 1 when the general path must
// decide, or kRestart.
int wc_create_fast(const idb::FileRule& r, Walk& w, Resolved& out) {
  int root = layer_root_fd(r, Layer::Upper);
  if (root < 0 || w.rest_len(r) == 0) return 1;
  const char* rest = w.rest(r);
  size_t slash = w.rest_len(r);
  while (slash > 0 && rest[slash - 1] != '/') --slash;
  if (r.outside.len > 0 && slash > 1 && lower_dir(r, rest, slash - 1) == Place::Missing)
    return layer_path(r, Layer::Upper, w, out);
  Place p;
  int rc = place_layer(r, r.outside.len ? Layer::Outside : Layer::Host, w, out, &p);
  if (rc != 0 || p != Place::Missing) return rc != 0 ? rc : 1;
  if (slash > 1) {  // the parent below the upper root must be there already
    char parent[PATH_MAX];
    memcpy(parent, rest + 1, slash - 2);
    parent[slash - 2] = '\0';
    int fd = sys::openat2(root, parent, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (fd < 0) return 1;
    sys::close(fd);
  }
  if (r.outside.len > 0) lower_absent_note(r, rest, w.rest_len(r));  // a new directory's children skip lower
  return layer_path(r, Layer::Upper, w, out);
}

}  // namespace

int wc_resolve(const idb::FileRule& r, Walk& w, Op op, int oflags, Resolved& out) {
  bool creates = op == Op::Create || op == Op::Replace;
  if (creates) {
    int rc = wc_create_fast(r, w, out);
    if (rc != 1) return rc;
  }
  UpperLook look;
  int rc = wc_look_upper(r, w, look);
  if (rc != 0) return rc;
  if (look.state == Upper::Found) return layer_path(r, Layer::Upper, w, out);
  if (look.state == Upper::Whiteout) {
    if (!creates || !look.last) return -ENOENT;
    drop_whiteout(r, w);
    rc = layer_path(r, Layer::Upper, w, out);
    out.over_whiteout = true;
    return rc;
  }
  Place p;
  rc = place_layer(r, r.outside.len ? Layer::Outside : Layer::Host, w, out, &p);
  if (rc != 0) return rc;
  switch (op) {
    case Op::Stat:
    case Op::Read:
    case Op::Exec:
    case Op::Remove:
      return 0;  // the lower path
    case Op::Create:
      if (p == Place::Found) {
        if (!(oflags & O_CREAT) || (oflags & O_EXCL)) return 0;  // EEXIST from the lower path
        return copy_up(r, w, look.depth, (oflags & O_TRUNC) != 0, out);
      }
      [[fallthrough]];
    case Op::Replace:
      rc = make_upper_parents(r, w, look.depth);
      if (rc == -ENOENT) return 0;  // no parent in any layer: ENOENT from the lower path
      if (rc < 0) return rc;
      return layer_path(r, Layer::Upper, w, out);
    case Op::Write:
    case Op::Modify:
      if (p != Place::Found) return 0;
      return copy_up(r, w, look.depth, op == Op::Write && (oflags & O_TRUNC), out);
  }
  return 0;
}

}  // namespace envrun::icpt
