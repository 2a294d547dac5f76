// Name-changing calls: mkdir, rmdir, unlink, rename, link, symlink, mknod, mkfifo (+ *at).
// Removal and rename go through remove_redirected/rename_redirected (writecopy whiteouts).
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "intercept/hook.hpp"
#include "intercept/sys.hpp"

using namespace envrun::icpt;

namespace {

// mkdir over a writecopy whiteout: the new upper directory hides the old lower one.
void make_opaque(const Resolved& out) {
  char p[PATH_MAX];
  size_t n = strlen(out.path);
  if (n + 16 > sizeof p) return;
  memcpy(p, out.path, n);
  memcpy(p + n, "/.wh..wh..opq", 14);
  int fd = sys::openat(AT_FDCWD, p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) sys::close(fd);
}

int make_dir(int dirfd, const char* path, mode_t mode) {
  return path_call(dirfd, path, Op::Create, AT_SYMLINK_NOFOLLOW, [mode](int d, const char* p) {
    int r = REAL(mkdirat)(d, p, mode);
    const Resolved* out = current_resolved();
    if (r == 0 && out != nullptr && out->over_whiteout) make_opaque(*out);
    return r;
  });
}

int make_node(int dirfd, const char* path, mode_t mode, dev_t dev) {
  return path_call(dirfd, path, Op::Create, AT_SYMLINK_NOFOLLOW,
                   [mode, dev](int d, const char* p) { return REAL(mknodat)(d, p, mode, dev); });
}

// remove and rename: the redirect step performs the call itself (writecopy needs whiteouts
// and copy-ups around the kernel's call); without redirect the real function runs.
template <class Redirected, class Plain>
struct DoneBySteps : NoSteps {
  Redirected redirected;
  Plain plain;
  bool done = false;
  DoneBySteps(Redirected r, Plain p) : redirected(r), plain(p) {}
  bool redirect(Call& c) {
    done = true;
    c.result = redirected();
    if (c.result < 0) return refuse(c, -errno);
    return true;
  }
  void real(Call& c) {
    if (done) return;
    c.result = plain();
    if (c.result < 0) c.failed = true, c.err = errno;
  }
};

template <class Redirected, class Plain>
int done_by_redirect(const Plan& p, Redirected redirected, Plain plain) {
  Call c;
  DoneBySteps<Redirected, Plain> h(redirected, plain);
  run_chain(c, p, h);
  if (c.failed) return fail_with(-c.err, -1);
  return int(c.result);
}

int remove_at(int dirfd, const char* path, int flags) {
  ensure_init();
  const Plan& p = plan_for(CallClass::Path, live_mask());
  if (fast(p, dirfd, path)) return REAL(unlinkat)(dirfd, path, flags);
  return done_by_redirect(p, [=] { return remove_redirected(dirfd, path, flags); },
                          [=] { return REAL(unlinkat)(dirfd, path, flags); });
}

int rename_at(int od, const char* op, int nd, const char* np, unsigned flags) {
  ensure_init();
  const Plan& p = plan_for(CallClass::Path, live_mask());
  if (fast(p, od, op) && passes_through(nd, np)) return REAL(renameat2)(od, op, nd, np, flags);
  return done_by_redirect(p, [=] { return rename_redirected(od, op, nd, np, flags); },
                          [=] { return REAL(renameat2)(od, op, nd, np, flags); });
}

// link: two paths; a hard link changes the source's link count, so writecopy copies the
// source up first (Op::Modify).
struct LinkSteps : NoSteps {
  int od, nd, flags;
  const char *op, *np;
  Resolved src, dst;
  bool redirect(Call& c) {
    int rc = resolve(od, op, Op::Modify, (flags & AT_SYMLINK_FOLLOW) ? 0 : AT_SYMLINK_NOFOLLOW, src);
    if (rc == 0) rc = resolve(nd, np, Op::Create, AT_SYMLINK_NOFOLLOW, dst);
    if (rc < 0) return refuse(c, rc);
    od = src.dirfd, op = src.path, nd = dst.dirfd, np = dst.path;
    return true;
  }
  void real(Call& c) {
    c.result = REAL(linkat)(od, op, nd, np, flags);
    if (c.result < 0) c.failed = true, c.err = errno;
  }
};

int link_at(int od, const char* op, int nd, const char* np, int flags) {
  ensure_init();
  const Plan& p = plan_for(CallClass::Path, live_mask());
  if (fast(p, od, op) && passes_through(nd, np)) return REAL(linkat)(od, op, nd, np, flags);
  Call c;
  LinkSteps h;
  h.od = od, h.op = op, h.nd = nd, h.np = np, h.flags = flags;
  run_chain(c, p, h);
  if (c.failed) return fail_with(-c.err, -1);
  return int(c.result);
}

int symlink_at(const char* target, int dirfd, const char* path) {
  // the target is stored as given: an inside path
  return path_call(dirfd, path, Op::Create, AT_SYMLINK_NOFOLLOW,
                   [target](int d, const char* p) { return REAL(symlinkat)(target, d, p); });
}

}  // namespace

HOOK int mkdir(const char* path, mode_t mode) noexcept { return make_dir(AT_FDCWD, path, mode); }
HOOK int mkdirat(int dirfd, const char* path, mode_t mode) noexcept { return make_dir(dirfd, path, mode); }
HOOK int rmdir(const char* path) noexcept { return remove_at(AT_FDCWD, path, AT_REMOVEDIR); }
HOOK int unlink(const char* path) noexcept { return remove_at(AT_FDCWD, path, 0); }
HOOK int unlinkat(int dirfd, const char* path, int flags) noexcept { return remove_at(dirfd, path, flags); }

HOOK int rename(const char* oldpath, const char* newpath) noexcept {
  return rename_at(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}
HOOK int renameat(int od, const char* oldpath, int nd, const char* newpath) noexcept {
  return rename_at(od, oldpath, nd, newpath, 0);
}
HOOK int renameat2(int od, const char* oldpath, int nd, const char* newpath, unsigned flags) noexcept {
  return rename_at(od, oldpath, nd, newpath, flags);
}

HOOK int link(const char* oldpath, const char* newpath) noexcept {
  return link_at(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}
HOOK int linkat(int od, const char* oldpath, int nd, const char* newpath, int flags) noexcept {
  return link_at(od, oldpath, nd, newpath, flags);
}
HOOK int symlink(const char* target, const char* path) noexcept { return symlink_at(target, AT_FDCWD, path); }
HOOK int symlinkat(const char* target, int dirfd, const char* path) noexcept {
  return symlink_at(target, dirfd, path);
}

HOOK int mknod(const char* path, mode_t mode, dev_t dev) noexcept { return make_node(AT_FDCWD, path, mode, dev); }
HOOK int mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) noexcept {
  return make_node(dirfd, path, mode, dev);
}
HOOK int mkfifo(const char* path, mode_t mode) noexcept { return make_node(AT_FDCWD, path, mode | S_IFIFO, 0); }
HOOK int mkfifoat(int dirfd, const char* path, mode_t mode) noexcept {
  return make_node(dirfd, path, mode | S_IFIFO, 0);
}
// glibc < 2.33 binaries
HOOK int __xmknod(int, const char* path, mode_t mode, dev_t* dev) {
  return make_node(AT_FDCWD, path, mode, dev ? *dev : 0);
}
HOOK int __xmknodat(int, int dirfd, const char* path, mode_t mode, dev_t* dev) {
  return make_node(dirfd, path, mode, dev ? *dev : 0);
}
