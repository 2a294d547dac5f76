// Path calls that only need the resolved path: statfs/statvfs (+64), chroot (the real
// directory; the rules keep naming inside paths afterwards), name_to_handle_at.
#include <fcntl.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "intercept/hook.hpp"

using namespace envrun::icpt;

namespace {

template <class Fn>
int through(int dirfd, const char* path, Op op, int at_flags, Fn real) {
  return path_call(dirfd, path, op, at_flags, real);
}

}  // namespace

HOOK int statfs(const char* path, struct statfs* buf) noexcept {
  return through(AT_FDCWD, path, Op::Stat, 0, [buf](int, const char* p) { return REAL(statfs)(p, buf); });
}
HOOK int statfs64(const char* path, struct statfs64* buf) noexcept {
  return through(AT_FDCWD, path, Op::Stat, 0, [buf](int, const char* p) { return REAL(statfs64)(p, buf); });
}
HOOK int statvfs(const char* path, struct statvfs* buf) noexcept {
  return through(AT_FDCWD, path, Op::Stat, 0, [buf](int, const char* p) { return REAL(statvfs)(p, buf); });
}
HOOK int statvfs64(const char* path, struct statvfs64* buf) noexcept {
  return through(AT_FDCWD, path, Op::Stat, 0, [buf](int, const char* p) { return REAL(statvfs64)(p, buf); });
}
HOOK int chroot(const char* path) noexcept {
  return through(AT_FDCWD, path, Op::Read, 0, [](int, const char* p) { return REAL(chroot)(p); });
}
HOOK int name_to_handle_at(int dirfd, const char* path, struct file_handle* h, int* mount_id, int flags) noexcept {
  return through(dirfd, path, Op::Stat, (flags & AT_SYMLINK_FOLLOW) ? 0 : AT_SYMLINK_NOFOLLOW,
                 [=](int d, const char* p) { return REAL(name_to_handle_at)(d, p, h, mount_id, flags); });
}
