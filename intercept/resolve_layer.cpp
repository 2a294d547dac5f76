// Step 5 of the resolution: a path placed in a layer (a rule's outside or upper directory)
// must stay beneath it. openat2(RESOLVE_BENEATH) on the layer's cached O_PATH fd checks it in
// one call; when the kernel says EXDEV (an absolute symlink, or ".." above the layer) the
// path is walked one component at a time and each symlink target is taken as an inside
// path (absolute: as is; relative: from the link's inside directory) and resolved again.
#include <errno.h>
#include <linux/openat2.h>

#include "intercept/resolve_internal.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

// The symlink `target` met at rest[cs..ce) of w's path: rewrite w's inside path to the
// target (as an inside path) followed by what came after the link.
int follow_link(const idb::FileRule& r, Walk& w, size_t cs, size_t ce, const char* target, size_t tlen) {
  if (++w.links > kMaxSymlinks) return -ELOOP;
  const InsidePath& in = *w.in;
  size_t pre = rule_prefix(r);
  const char* tail = in.s + pre + ce;  // "" or "/more"
  size_t tail_len = in.n - pre - ce;
  InsidePath next;
  int rc;
  if (target[0] == '/') {
    rc = normalize_abs(next, target, tlen);
  } else {
    size_t dir_len = pre + cs - 1;  // the inside directory holding the link ("/" when 0)
    rc = dir_len == 0 ? normalize_abs(next, target, tlen) : join_normalized(next, in.s, dir_len, target, tlen);
  }
  if (rc < 0) return rc;
  bool target_dir = next.trailing;  // "target/"
  if (tail_len > 0 && (rc = append_normalized(next, tail, tail_len)) < 0) return rc;
  next.trailing = in.trailing || (tail_len == 0 && target_dir);
  *w.in = next;
  return kRestart;
}

namespace {

// The component walk: out.buf already holds layer dir + rest; rest starts at `dlen`.
int walk_layer(const idb::FileRule& r, int root, Walk& w, Place* where) {
  const char* rest = w.rest(r);
  size_t rlen = w.rest_len(r);
  int cur = root;
  int rc = 0;
  *where = Place::Found;
  size_t i = 0;
  while (i < rlen) {
    while (i < rlen && rest[i] == '/') ++i;
    size_t cs = i;
    while (i < rlen && rest[i] != '/') ++i;
    size_t ce = i;
    if (ce == cs) break;
    char name[NAME_MAX + 1];
    if (ce - cs > NAME_MAX) {
      rc = -ENAMETOOLONG;
      break;
    }
    memcpy(name, rest + cs, ce - cs);
    name[ce - cs] = '\0';
    bool last = ce >= rlen;
    struct stat st;
    int e = sys::fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW);
    if (e < 0) {
      *where = e == -ENOENT ? Place::Missing : Place::Other;
      break;
    }
    if (S_ISLNK(st.st_mode) && (!last || w.follow_last())) {
      char target[PATH_MAX];
      long n = sys::readlinkat(cur, name, target, sizeof target - 1);
      if (n <= 0) {
        *where = Place::Other;
        break;
      }
      target[n] = '\0';
      rc = follow_link(r, w, cs, ce, target, size_t(n));
      break;
    }
    if (last) break;
    if (!S_ISDIR(st.st_mode)) {
      *where = Place::Other;  // ENOTDIR from the real call
      break;
    }
    int next = sys::openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      *where = Place::Other;
      break;
    }
    if (cur != root) sys::close(cur);
    cur = next;
  }
  if (cur != root) sys::close(cur);
  return rc;
}

}  // namespace

int layer_path(const idb::FileRule& r, Layer layer, const Walk& w, Resolved& out) {
  const InsidePath& in = *w.in;
  size_t dlen = 0;
  const char* dir = layer == Layer::Host ? "" : layer_dir(r, layer, &dlen);
  size_t skip = layer == Layer::Host ? 0 : rule_prefix(r);
  long n = concat(out.buf, sizeof out.buf, dir, dlen, in.s + skip, in.n - skip, "/", in.trailing);
  if (n < 0) return int(n);
  if (n == 0) n = concat(out.buf, sizeof out.buf, "/", 1, "", 0);
  out.path = out.buf;
  out.dirfd = AT_FDCWD;
  out.where = layer;
  out.rest_off = (unsigned short)(layer == Layer::Host ? rule_prefix(r) : dlen);
  return 0;
}

int place_layer(const idb::FileRule& r, Layer layer, Walk& w, Resolved& out, Place* where) {
  int rc = layer_path(r, layer, w, out);
  if (rc < 0) return rc;
  size_t dlen = out.rest_off;
  *where = Place::Found;
  if (layer == Layer::Host) {
    struct stat st;
    int e = sys::fstatat(AT_FDCWD, out.buf, &st, w.follow_last() ? 0 : AT_SYMLINK_NOFOLLOW);
    *where = e == 0 ? Place::Found : e == -ENOENT ? Place::Missing : Place::Other;
    return 0;
  }
  if (w.rest_len(r) == 0) return 0;  // the layer directory itself
  int root = layer_root_fd(r, layer);
  if (root < 0) {
    *where = root == -ENOENT ? Place::Missing : Place::Other;
    return 0;
  }
  const char* rel = out.buf + dlen + 1;
  int fd = sys::openat2(root, rel, O_PATH | O_CLOEXEC | (w.follow_last() ? 0 : O_NOFOLLOW), 0,
                        RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
  if (fd >= 0) {
    sys::close(fd);
    return 0;
  }
  if (fd == -ENOENT) {
    *where = Place::Missing;
    return 0;
  }
  if (fd != -EXDEV && fd != -ENOSYS && fd != -EPERM) {
    *where = Place::Other;  // the real call meets the same error
    return 0;
  }
  return walk_layer(r, root, w, where);
}

}  // namespace envrun::icpt
