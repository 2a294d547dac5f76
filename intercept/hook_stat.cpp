// The stat family: stat/lstat/fstatat (+64), the glibc < 2.33 __xstat entry points, statx;
// access/faccessat/eaccess/euidaccess. Look-only: Op::Stat.
#include <sys/stat.h>
#include <unistd.h>

#include "intercept/hook.hpp"

using namespace envrun::icpt;

namespace {

// Resolve for a look; on failure the hook returns -1 with errno.
inline int look(int dirfd, const char* path, int at_flags, Resolved& out) {
  ensure_init();
  return resolve(dirfd, path, Op::Stat, at_flags & AT_SYMLINK_NOFOLLOW, out);
}

template <class Fn>
int stat_call(int dirfd, const char* path, int at_flags, Fn real) {
  ensure_init();
  if (passes_through(dirfd, path)) return real(dirfd, path);
  Resolved out;
  int rc = look(dirfd, path, at_flags, out);
  if (rc < 0) return fail_with(rc, -1);
  return real(out.dirfd, out.path);
}

// access(W_OK) on a readonly rule is EROFS; on writecopy, a lower file counts as writable
// when it could be read (a write copies it up).
template <class Fn>
int access_call(int dirfd, const char* path, int mode, int at_flags, Fn real) {
  ensure_init();
  if (passes_through(dirfd, path)) return real(dirfd, path, mode);
  Resolved out;
  int rc = look(dirfd, path, at_flags, out);
  if (rc < 0) return fail_with(rc, -1);
  if (out.rule != nullptr && (mode & W_OK)) {
    auto m = envrun::idb::FileMode(out.rule->mode);
    if (m == envrun::idb::FileMode::ReadOnly) return fail_with(-EROFS, -1);
    if (m == envrun::idb::FileMode::WriteCopy && out.where != Where::Upper) mode &= ~W_OK;
  }
  return real(out.dirfd, out.path, mode);
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
