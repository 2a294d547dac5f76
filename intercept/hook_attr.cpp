// Attribute changes: chmod/chown/utime(s)/utimensat/truncate and the extended attributes.
// Op::Modify (writecopy copies up first, readonly refuses); truncate is Op::Write; reading
// xattrs is a look.
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#include "intercept/hook.hpp"

using namespace envrun::icpt;

#pragma GCC diagnostic ignored "-Wnonnull-compare"  // utimensat(fd, NULL, ...) is futimens

namespace {

// The chain (redirect resolves), then real(dirfd, path); -1/errno on a rule's refusal.
template <class Fn>
auto through(int dirfd, const char* path, Op op, int at_flags, Fn real) -> decltype(real(0, path)) {
  return path_call(dirfd, path, op, at_flags, real);
}

constexpr int kNoFollow = AT_SYMLINK_NOFOLLOW;

}  // namespace

HOOK int chmod(const char* path, mode_t mode) noexcept {
  return through(AT_FDCWD, path, Op::Modify, 0, [mode](int d, const char* p) { return REAL(fchmodat)(d, p, mode, 0); });
}
HOOK int fchmodat(int dirfd, const char* path, mode_t mode, int flags) noexcept {
  return through(dirfd, path, Op::Modify, flags,
                 [mode, flags](int d, const char* p) { return REAL(fchmodat)(d, p, mode, flags); });
}
HOOK int chown(const char* path, uid_t uid, gid_t gid) noexcept {
  return through(AT_FDCWD, path, Op::Modify, 0,
                 [uid, gid](int d, const char* p) { return REAL(fchownat)(d, p, uid, gid, 0); });
}
HOOK int lchown(const char* path, uid_t uid, gid_t gid) noexcept {
  return through(AT_FDCWD, path, Op::Modify, kNoFollow,
                 [uid, gid](int d, const char* p) { return REAL(fchownat)(d, p, uid, gid, AT_SYMLINK_NOFOLLOW); });
}
HOOK int fchownat(int dirfd, const char* path, uid_t uid, gid_t gid, int flags) noexcept {
  return through(dirfd, path, Op::Modify, flags,
                 [uid, gid, flags](int d, const char* p) { return REAL(fchownat)(d, p, uid, gid, flags); });
}

HOOK int utime(const char* path, const struct utimbuf* t) noexcept {
  return through(AT_FDCWD, path, Op::Modify, 0, [t](int, const char* p) { return REAL(utime)(p, t); });
}
HOOK int utimes(const char* path, const struct timeval t[2]) noexcept {
  return through(AT_FDCWD, path, Op::Modify, 0, [t](int, const char* p) { return REAL(utimes)(p, t); });
}
HOOK int lutimes(const char* path, const struct timeval t[2]) noexcept {
  return through(AT_FDCWD, path, Op::Modify, kNoFollow, [t](int, const char* p) { return REAL(lutimes)(p, t); });
}
HOOK int futimesat(int dirfd, const char* path, const struct timeval t[2]) noexcept {
  return through(dirfd, path, Op::Modify, 0, [t](int d, const char* p) { return REAL(futimesat)(d, p, t); });
}
HOOK int utimensat(int dirfd, const char* path, const struct timespec t[2], int flags) noexcept {
  if (path == nullptr) return REAL(utimensat)(dirfd, path, t, flags);  // futimens
  return through(dirfd, path, Op::Modify, flags,
                 [t, flags](int d, const char* p) { return REAL(utimensat)(d, p, t, flags); });
}

HOOK int truncate(const char* path, off_t len) noexcept {
  return through(AT_FDCWD, path, Op::Write, 0, [len](int, const char* p) { return REAL(truncate)(p, len); });
}
HOOK int truncate64(const char* path, off64_t len) noexcept {
  return through(AT_FDCWD, path, Op::Write, 0, [len](int, const char* p) { return REAL(truncate64)(p, len); });
}

// ---- extended attributes ----------------------------------------------------------------
HOOK ssize_t getxattr(const char* path, const char* name, void* v, size_t n) noexcept {
  return through(AT_FDCWD, path, Op::Stat, 0,
                 [=](int, const char* p) { return REAL(getxattr)(p, name, v, n); });
}
HOOK ssize_t lgetxattr(const char* path, const char* name, void* v, size_t n) noexcept {
  return through(AT_FDCWD, path, Op::Stat, kNoFollow,
                 [=](int, const char* p) { return REAL(lgetxattr)(p, name, v, n); });
}
HOOK int setxattr(const char* path, const char* name, const void* v, size_t n, int flags) noexcept {
  return through(AT_FDCWD, path, Op::Modify, 0,
                 [=](int, const char* p) { return REAL(setxattr)(p, name, v, n, flags); });
}
HOOK int lsetxattr(const char* path, const char* name, const void* v, size_t n, int flags) noexcept {
  return through(AT_FDCWD, path, Op::Modify, kNoFollow,
                 [=](int, const char* p) { return REAL(lsetxattr)(p, name, v, n, flags); });
}
HOOK ssize_t listxattr(const char* path, char* list, size_t n) noexcept {
  return through(AT_FDCWD, path, Op::Stat, 0, [=](int, const char* p) { return REAL(listxattr)(p, list, n); });
}
HOOK ssize_t llistxattr(const char* path, char* list, size_t n) noexcept {
  return through(AT_FDCWD, path, Op::Stat, kNoFollow,
                 [=](int, const char* p) { return REAL(llistxattr)(p, list, n); });
}
HOOK int removexattr(const char* path, const char* name) noexcept {
  return through(AT_FDCWD, path, Op::Modify, 0, [=](int, const char* p) { return REAL(removexattr)(p, name); });
}
HOOK int lremovexattr(const char* path, const char* name) noexcept {
  return through(AT_FDCWD, path, Op::Modify, kNoFollow,
                 [=](int, const char* p) { return REAL(lremovexattr)(p, name); });
}
