// The stat family: stat/lstat/fstatat (+64), the glibc < 2.33 __xstat entry points, statx;
// access/faccessat/eaccess/euidaccess. Look-only: Op::Stat.
#include <sys/stat.h>
#include <unistd.h>

#include "intercept/hook.hpp"

using namespace envrun::icpt;

namespace {

template <class Fn>
int stat_call(int dirfd, const char* path, int at_flags, Fn real) {
  return path_call(dirfd, path, Op::Stat, at_flags & AT_SYMLINK_NOFOLLOW, real);
}

// access(W_OK) on a readonly rule is EROFS; on writecopy, a lower file counts as writable
// when it could be read (a write copies it up). Both are the redirect step's decisions.
template <class Fn>
struct AccessSteps : NoSteps {
  Fn fn;
  int mode;
  Resolved out;
  AccessSteps(Fn f, int m) : fn(f), mode(m) {}
  bool redirect(Call& c) {
    int rc = resolve(c.dirfd, c.path, Op::Stat, c.flags, out);
    if (rc < 0) return refuse(c, rc);
    if (out.rule != nullptr && (mode & W_OK)) {
      auto m = envrun::idb::FileMode(out.rule->mode);
      if (m == envrun::idb::FileMode::ReadOnly) return refuse(c, -EROFS);
      if (m == envrun::idb::FileMode::WriteCopy && out.where != Where::Upper) mode &= ~W_OK;
    }
    c.dirfd = out.dirfd;
    c.path = out.path;
    return true;
  }
  void real(Call& c) {
    c.result = fn(c.dirfd, c.path, mode);
    if (c.result < 0) c.failed = true, c.err = errno;
  }
};

template <class Fn>
int access_call(int dirfd, const char* path, int mode, int at_flags, Fn real) {
  ensure_init();
  const Plan& p = plan_for(CallClass::Path, live_mask());
  if (fast(p, dirfd, path)) return real(dirfd, path, mode);
  Call c;
  c.dirfd = dirfd;
  c.path = path;
  c.flags = at_flags & AT_SYMLINK_NOFOLLOW;
  AccessSteps<Fn> h(real, mode);
  run_chain(c, p, h);
  if (c.failed) return fail_with(-c.err, -1);
  return int(c.result);
}

}  // namespace

HOOK int stat(const char* path, struct stat* st) noexcept {
  return stat_call(AT_FDCWD, path, 0, [st](int d, const char* p) { return REAL(fstatat)(d, p, st, 0); });
}
HOOK int lstat(const char* path, struct stat* st) noexcept {
  return stat_call(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW,
                   [st](int d, const char* p) { return REAL(fstatat)(d, p, st, AT_SYMLINK_NOFOLLOW); });
}
HOOK int fstatat(int dirfd, const char* path, struct stat* st, int flags) noexcept {
  return stat_call(dirfd, path, flags, [st, flags](int d, const char* p) { return REAL(fstatat)(d, p, st, flags); });
}
HOOK int stat64(const char* path, struct stat64* st) noexcept {
  return stat_call(AT_FDCWD, path, 0, [st](int d, const char* p) { return REAL(fstatat64)(d, p, st, 0); });
}
HOOK int lstat64(const char* path, struct stat64* st) noexcept {
  return stat_call(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW,
                   [st](int d, const char* p) { return REAL(fstatat64)(d, p, st, AT_SYMLINK_NOFOLLOW); });
}
HOOK int fstatat64(int dirfd, const char* path, struct stat64* st, int flags) noexcept {
  return stat_call(dirfd, path, flags, [st, flags](int d, const char* p) { return REAL(fstatat64)(d, p, st, flags); });
}

HOOK int statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* buf) noexcept {
  return stat_call(dirfd, path, flags,
                   [flags, mask, buf](int d, const char* p) { return REAL(statx)(d, p, flags, mask, buf); });
}

// glibc < 2.33 binaries: the versioned __xstat family (struct stat layout chosen by `ver`).
HOOK int __xstat(int ver, const char* path, struct stat* st) {
  return stat_call(AT_FDCWD, path, 0, [ver, st](int, const char* p) { return REALV(__xstat)(ver, p, st); });
}
HOOK int __lxstat(int ver, const char* path, struct stat* st) {
  return stat_call(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW,
                   [ver, st](int, const char* p) { return REALV(__lxstat)(ver, p, st); });
}
HOOK int __fxstatat(int ver, int dirfd, const char* path, struct stat* st, int flags) {
  return stat_call(dirfd, path, flags,
                   [ver, st, flags](int d, const char* p) { return REALV(__fxstatat)(ver, d, p, st, flags); });
}
HOOK int __xstat64(int ver, const char* path, struct stat64* st) {
  return stat_call(AT_FDCWD, path, 0, [ver, st](int, const char* p) { return REALV(__xstat64)(ver, p, st); });
}
HOOK int __lxstat64(int ver, const char* path, struct stat64* st) {
  return stat_call(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW,
                   [ver, st](int, const char* p) { return REALV(__lxstat64)(ver, p, st); });
}
HOOK int __fxstatat64(int ver, int dirfd, const char* path, struct stat64* st, int flags) {
  return stat_call(dirfd, path, flags,
                   [ver, st, flags](int d, const char* p) { return REALV(__fxstatat64)(ver, d, p, st, flags); });
}

HOOK int access(const char* path, int mode) noexcept {
  return access_call(AT_FDCWD, path, mode, 0, [](int d, const char* p, int m) { return REAL(faccessat)(d, p, m, 0); });
}
HOOK int faccessat(int dirfd, const char* path, int mode, int flags) noexcept {
  return access_call(dirfd, path, mode, flags,
                     [flags](int d, const char* p, int m) { return REAL(faccessat)(d, p, m, flags); });
}
HOOK int eaccess(const char* path, int mode) noexcept {
  return access_call(AT_FDCWD, path, mode, 0,
                     [](int d, const char* p, int m) { return REAL(faccessat)(d, p, m, AT_EACCESS); });
}
HOOK int euidaccess(const char* path, int mode) noexcept {
  return access_call(AT_FDCWD, path, mode, 0,
                     [](int d, const char* p, int m) { return REAL(faccessat)(d, p, m, AT_EACCESS); });
}
