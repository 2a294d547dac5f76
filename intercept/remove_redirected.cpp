// unlink/rmdir and rename through the rules. Only writecopy needs more than a resolved path:
// removing a lower name leaves a whiteout in upper; rmdir of a union directory checks both
// layers for emptiness and clears upper's whiteouts first; rename copies a lower file up
// and whites its old name out (a lower directory cannot move: EXDEV, as overlayfs does,
// and `mv` falls back to copying).
#include <errno.h>
#include <stdio.h>

#include "intercept/chain.hpp"
#include "intercept/resolve_internal.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

namespace {

struct Dent {
  uint64_t ino;
  int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[1];
};

bool is_dot(const char* n) { return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')); }
bool is_wh(const char* n) { return strncmp(n, kWhiteoutPrefix, sizeof kWhiteoutPrefix - 1) == 0; }

// Call fn(name) for each entry of dir (a path); stops when fn returns false. 0 or -errno.
template <class Fn>
int each_entry(const char* dir, Fn fn) {
  int fd = sys::openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fd;
  alignas(8) char buf[8192];
  int rc = 0;
  for (;;) {
    int n = sys::getdents64(fd, buf, sizeof buf);
    if (n <= 0) {
      rc = n;
      break;
    }
    bool go = true;
    for (int off = 0; go && off < n;) {
      auto* d = reinterpret_cast<Dent*>(buf + off);
      off += d->reclen;
      if (!is_dot(d->name)) go = fn(fd, d->name);
    }
    if (!go) break;
  }
  sys::close(fd);
  return rc;
}

// Is the union directory empty? upper/lower: paths (nullptr when absent there).
int union_empty(const char* upper, const char* lower) {
  bool empty = true;
  int ufd = -1;
  bool opaque = false;
  if (upper != nullptr) {
    int rc = each_entry(upper, [&](int, const char* n) {
      if (strcmp(n, kOpaqueMarker) == 0) opaque = true;
      else if (!is_wh(n)) empty = false;
      return empty;
    });
    if (rc < 0) return rc;
    if (!empty) return -ENOTEMPTY;
    ufd = sys::openat(AT_FDCWD, upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
  }
  if (lower != nullptr && !opaque) {
    int rc = each_entry(lower, [&](int, const char* n) {
      char wh[NAME_MAX + sizeof kWhiteoutPrefix];
      size_t k = strlen(n);
      if (ufd >= 0 && k <= NAME_MAX) {
        memcpy(wh, kWhiteoutPrefix, sizeof kWhiteoutPrefix - 1);
        memcpy(wh + sizeof kWhiteoutPrefix - 1, n, k + 1);
        if (sys::exists_nofollow(ufd, wh) == 0) return true;  // whited out
      }
      empty = false;
      return false;
    });
    if (rc < 0 && ufd >= 0) sys::close(ufd);
    if (rc < 0) return rc;
  }
  if (ufd >= 0) sys::close(ufd);
  return empty ? 0 : -ENOTEMPTY;
}

int clear_whiteouts(const char* upper) {
  return each_entry(upper, [](int fd, const char* n) {
    if (is_wh(n)) sys::unlinkat(fd, n, 0);
    return true;
  });
}

size_t last_slash(const Walk& w, const idb::FileRule& r) {
  size_t k = w.rest_len(r);
  while (k > 0 && w.rest(r)[k - 1] != '/') --k;
  return k > 0 ? k - 1 : 0;
}

// Where a writecopy name is: upper and/or lower (paths into u / l).
struct WcSpot {
  bool in_upper = false, in_lower = false, lower_dir = false;
  UpperLook look;
  Resolved u, l;
};

// 0, kRestart, or -errno.
int wc_spot(const idb::FileRule& r, Walk& w, WcSpot& s) {
  int rc = wc_look_upper(r, w, s.look);
  if (rc != 0) return rc;
  if (s.look.state == Upper::Whiteout) return -ENOENT;
  Place p;
  rc = place_layer(r, r.outside.len ? Layer::Outside : Layer::Host, w, s.l, &p);
  if (rc != 0) return rc;
  s.in_lower = p == Place::Found;
  struct stat st;
  s.lower_dir = s.in_lower && sys::fstatat(AT_FDCWD, s.l.buf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
  s.in_upper = s.look.state == Upper::Found;
  if (s.in_upper && (rc = layer_path(r, Layer::Upper, w, s.u)) < 0) return rc;
  s.u.rule = s.l.rule = &r;
  if (!s.in_upper && !s.in_lower) return p == Place::Missing ? -ENOENT : -EACCES;
  return 0;
}

int wc_remove(const idb::FileRule& r, Walk& w, int at_flags) {
  WcSpot s;
  int rc = wc_spot(r, w, s);
  if (rc != 0) return rc;
  bool dir = at_flags & AT_REMOVEDIR;
  if (s.in_upper) {
    if (dir) {
      if ((rc = union_empty(s.u.buf, s.lower_dir ? s.l.buf : nullptr)) < 0) return rc;
      clear_whiteouts(s.u.buf);
    }
    if ((rc = sys::unlinkat(AT_FDCWD, s.u.buf, at_flags & AT_REMOVEDIR)) < 0) return rc;
  } else {
    if (dir && !s.lower_dir) return -ENOTDIR;
    if (!dir && s.lower_dir) return -EISDIR;
    if (dir && (rc = union_empty(nullptr, s.l.buf)) < 0) return rc;
  }
  if (!s.in_lower) return 0;
  return make_whiteout(r, w, s.in_upper ? last_slash(w, r) : s.look.depth);
}

}  // namespace

int remove_redirected(int dirfd, const char* path, int at_flags) {
  if (!redirect_on()) return REAL(unlinkat)(dirfd, path, at_flags);
  InsidePath in;
  bool base_real = false;
  int rc = inside_of(dirfd, path, in, &base_real);
  if (rc > 0) return REAL(unlinkat)(dirfd, path, at_flags);
  Walk w{&in};
  w.follow = false;
  while (rc == 0) {
    const idb::FileRule* r = g_state.db.match(in.s, in.n);
    if (r == nullptr || idb::FileMode(r->mode) != idb::FileMode::WriteCopy) {
      Resolved out;
      reset_resolved(out, dirfd, path);
      rc = resolve_inside(in, Op::Remove, AT_SYMLINK_NOFOLLOW, 0, base_real && w.links == 0, out);
      if (rc < 0) break;
      return REAL(unlinkat)(out.dirfd, out.path, at_flags);
    }
    rc = wc_remove(*r, w, at_flags);
    if (rc == kRestart) rc = w.links > kMaxSymlinks ? -ELOOP : 0;
    else if (rc == 0) {
      note_redirected();
      return 0;
    }
  }
  errno = -rc;
  return -1;
}

namespace {

// The source of a rename: out = the path to hand to the kernel. A writecopy source is
// made to exist in upper (copied up when only lower has it); *wc/*w tell where to leave
// the whiteout afterwards (*wc null: none needed).
int rename_source(InsidePath& in, bool base_real, Resolved& out, Walk& w, const idb::FileRule** wc) {
  *wc = nullptr;
  for (;;) {
    const idb::FileRule* r = g_state.db.match(in.s, in.n);
    if (r == nullptr || idb::FileMode(r->mode) != idb::FileMode::WriteCopy)
      return resolve_inside(in, Op::Remove, AT_SYMLINK_NOFOLLOW, 0, base_real && w.links == 0, out);
    WcSpot s;
    int rc = wc_spot(*r, w, s);
    if (rc == kRestart) {
      if (w.links > kMaxSymlinks) return -ELOOP;
      continue;
    }
    if (rc < 0) return rc;
    if (s.lower_dir) return -EXDEV;  // a merged or lower directory does not move
    if (s.in_upper) {
      rc = layer_path(*r, Layer::Upper, w, out);
    } else {
      out = s.l;
      out.path = out.buf;
      rc = copy_up(*r, w, s.look.depth, false, out);
    }
    if (rc < 0) return rc;
    out.rule = r;
    if (s.in_lower) *wc = r;
    return 0;
  }
}

}  // namespace

int rename_redirected(int olddirfd, const char* oldpath, int newdirfd, const char* newpath, unsigned flags) {
  if (!redirect_on()) return REAL(renameat2)(olddirfd, oldpath, newdirfd, newpath, flags);
  Resolved dst;
  if (flags & RENAME_NOREPLACE) {  // the name may exist in a layer the target path is not in
    int rc = resolve(newdirfd, newpath, Op::Stat, AT_SYMLINK_NOFOLLOW, dst);
    struct stat st;
    if (rc == 0 && dst.redirected && sys::fstatat(dst.dirfd, dst.path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      errno = EEXIST;
      return -1;
    }
  }
  reset_resolved(dst, newdirfd, newpath);
  InsidePath din;
  bool base_real = false;
  int rc = inside_of(newdirfd, newpath, din, &base_real);
  if (rc == 0) rc = resolve_inside(din, Op::Replace, AT_SYMLINK_NOFOLLOW, 0, base_real, dst);
  if (rc < 0) {
    errno = -rc;
    return -1;
  }
  Resolved src;
  reset_resolved(src, olddirfd, oldpath);
  InsidePath sin;
  Walk w{&sin};
  w.follow = false;
  const idb::FileRule* wc = nullptr;
  rc = inside_of(olddirfd, oldpath, sin, &base_real);
  if (rc == 0) rc = rename_source(sin, base_real, src, w, &wc);
  if (rc < 0) {
    errno = -rc;
    return -1;
  }
  int res = REAL(renameat2)(src.dirfd, src.path, dst.dirfd, dst.path, flags);
  if (res == 0 && wc != nullptr) make_whiteout(*wc, w, last_slash(w, *wc));  // raw calls: errno kept
  return res;
}

}  // namespace envrun::icpt
