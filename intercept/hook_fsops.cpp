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
  ensure_init();
  if (passes_through(dirfd, path)) return REAL(mkdirat)(dirfd, path, mode);
  Resolved out;
  int rc = resolve(dirfd, path, Op::Create, AT_SYMLINK_NOFOLLOW, out);
  if (rc < 0) return fail_with(rc, -1);
  int r = REAL(mkdirat)(out.dirfd, out.path, mode);
  if (r == 0 && out.over_whiteout) make_opaque(out);
  return r;
}

int make_node(int dirfd, const char* path, mode_t mode, dev_t dev) {
  ensure_init();
  if (passes_through(dirfd, path)) return REAL(mknodat)(dirfd, path, mode, dev);
  Resolved out;
  int rc = resolve(dirfd, path, Op::Create, AT_SYMLINK_NOFOLLOW, out);
  if (rc < 0) return fail_with(rc, -1);
  return REAL(mknodat)(out.dirfd, out.path, mode, dev);
}

int remove_at(int dirfd, const char* path, int flags) {
  ensure_init();
  if (passes_through(dirfd, path)) return REAL(unlinkat)(dirfd, path, flags);
  return remove_redirected(dirfd, path, flags);
}

int rename_at(int od, const char* op, int nd, const char* np, unsigned flags) {
  ensure_init();
  if (passes_through(od, op) && passes_through(nd, np)) return REAL(renameat2)(od, op, nd, np, flags);
  return rename_redirected(od, op, nd, np, flags);
}

int link_at(int od, const char* op, int nd, const char* np, int flags) {
  ensure_init();
  if (passes_through(od, op) && passes_through(nd, np)) return REAL(linkat)(od, op, nd, np, flags);
  Resolved src, dst;
  // a hard link changes the source's link count: writecopy copies it up first
  int rc = resolve(od, op, Op::Modify, (flags & AT_SYMLINK_FOLLOW) ? 0 : AT_SYMLINK_NOFOLLOW, src);
  if (rc == 0) rc = resolve(nd, np, Op::Create, AT_SYMLINK_NOFOLLOW, dst);
  if (rc < 0) return fail_with(rc, -1);
  return REAL(linkat)(src.dirfd, src.path, dst.dirfd, dst.path, flags);
}

int symlink_at(const char* target, int dirfd, const char* path) {
  ensure_init();
  if (passes_through(dirfd, path)) return REAL(symlinkat)(target, dirfd, path);
  Resolved out;  // the target is stored as given: an inside path
  int rc = resolve(dirfd, path, Op::Create, AT_SYMLINK_NOFOLLOW, out);
  if (rc < 0) return fail_with(rc, -1);
  return REAL(symlinkat)(target, out.dirfd, out.path);
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
