// syscall(): the libc wrapper applications use for calls glibc has no function for, or to
// bypass it. Path, exec and socket-address system calls are routed through the library's
// own hooks of the equivalent libc functions (one implementation of each rule: redirect,
// virtual cwd, writecopy, meter), with the raw calling convention kept (-1 and errno, the
// kernel's return value); openat2 (no glibc wrapper here) goes through resolve() and the
// real system call; io_uring_setup fails with ENOSYS while `redirect` is on (its
// submissions would bypass every hook). close, close_range, dup/dup2/dup3 and fcntl go
// through the close and dup hooks too, so that the library's own fds (layer_fds.hpp) stay
// open and the per-fd records follow; getdents64 gets the union listing and hides names.
// Everything else goes to the real syscall().
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#include <linux/openat2.h>

#include "intercept/hook.hpp"
#include "intercept/layer_fds.hpp"

using namespace envrun::icpt;

namespace {

// The arguments as the kernel takes them (six registers).
struct Args {
  long v[6];
  int i(int k) const { return int(v[k]); }
  unsigned u(int k) const { return unsigned(v[k]); }
  const char* s(int k) const { return reinterpret_cast<const char*>(v[k]); }
  template <class T>
  T* p(int k) const { return reinterpret_cast<T*>(v[k]); }
};

Op open_op(long flags) {
  if ((flags & O_TMPFILE) == O_TMPFILE || (flags & O_CREAT)) return Op::Create;
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND))) return Op::Write;
  return Op::Read;
}

long openat2_call(const Args& a) {
  const open_how* how = a.p<const open_how>(2);
  if (a.s(1) == nullptr || how == nullptr || a.v[3] < long(sizeof(uint64_t) * 3))
    return REAL(syscall)(SYS_openat2, a.v[0], a.v[1], a.v[2], a.v[3]);
  if (how->resolve == 0) return open_redirected(a.i(0), a.s(1), int(how->flags), unsigned(how->mode));
  Resolved res;
  int rc = resolve(a.i(0), a.s(1), open_op(long(how->flags)), 0, res);
  if (rc < 0) {
    errno = -rc;
    return -1;
  }
  return REAL(syscall)(SYS_openat2, res.dirfd, res.path, how, a.v[3]);
}

// The raw getcwd returns the length with the NUL.
long getcwd_call(const Args& a) {
  char* r = getcwd(a.p<char>(0), size_t(a.v[1]));
  return r ? long(strlen(r) + 1) : -1;
}

// Path-taking calls routed to the library's libc-level hooks; -2 (never a result of
// these calls) when nr is not one of them.
constexpr long kNotMine = -2;

long path_call(long nr, const Args& a) {
  switch (nr) {
#ifdef SYS_open
    case SYS_open: return open(a.s(0), a.i(1), mode_t(a.v[2]));
    case SYS_creat: return creat(a.s(0), mode_t(a.v[1]));
    case SYS_stat: return stat(a.s(0), a.p<struct stat>(1));
    case SYS_lstat: return lstat(a.s(0), a.p<struct stat>(1));
    case SYS_access: return access(a.s(0), a.i(1));
    case SYS_readlink: return readlink(a.s(0), a.p<char>(1), size_t(a.v[2]));
    case SYS_mkdir: return mkdir(a.s(0), mode_t(a.v[1]));
    case SYS_rmdir: return rmdir(a.s(0));
    case SYS_unlink: return unlink(a.s(0));
    case SYS_rename: return rename(a.s(0), a.s(1));
    case SYS_link: return link(a.s(0), a.s(1));
    case SYS_symlink: return symlink(a.s(0), a.s(1));
    case SYS_chmod: return chmod(a.s(0), mode_t(a.v[1]));
    case SYS_chown: return chown(a.s(0), uid_t(a.v[1]), gid_t(a.v[2]));
    case SYS_lchown: return lchown(a.s(0), uid_t(a.v[1]), gid_t(a.v[2]));
    case SYS_mknod: return mknod(a.s(0), mode_t(a.v[1]), dev_t(a.v[2]));
    case SYS_utime: return utime(a.s(0), a.p<const utimbuf>(1));
    case SYS_utimes: return utimes(a.s(0), a.p<const timeval>(1));
#endif
    case SYS_openat: return openat(a.i(0), a.s(1), a.i(2), mode_t(a.v[3]));
    case SYS_openat2: return openat2_call(a);
    case SYS_newfstatat:
      if (a.s(1) == nullptr) break;  // fd-based (AT_EMPTY_PATH with NULL, Linux 6.11)
      return fstatat(a.i(0), a.s(1), a.p<struct stat>(2), a.i(3));
    case SYS_statx:
      if (a.s(1) == nullptr) break;
      return statx(a.i(0), a.s(1), a.i(2), a.u(3), a.p<struct statx>(4));
    case SYS_faccessat: return faccessat(a.i(0), a.s(1), a.i(2), 0);
    case SYS_faccessat2: return faccessat(a.i(0), a.s(1), a.i(2), a.i(3));
    case SYS_readlinkat: return readlinkat(a.i(0), a.s(1), a.p<char>(2), size_t(a.v[3]));
    case SYS_mkdirat: return mkdirat(a.i(0), a.s(1), mode_t(a.v[2]));
    case SYS_unlinkat: return unlinkat(a.i(0), a.s(1), a.i(2));
    case SYS_renameat: return renameat(a.i(0), a.s(1), a.i(2), a.s(3));
    case SYS_renameat2: return renameat2(a.i(0), a.s(1), a.i(2), a.s(3), a.u(4));
    case SYS_linkat: return linkat(a.i(0), a.s(1), a.i(2), a.s(3), a.i(4));
    case SYS_symlinkat: return symlinkat(a.s(0), a.i(1), a.s(2));
    case SYS_fchmodat: return fchmodat(a.i(0), a.s(1), mode_t(a.v[2]), 0);
    case SYS_fchownat: return fchownat(a.i(0), a.s(1), uid_t(a.v[2]), gid_t(a.v[3]), a.i(4));
    case SYS_mknodat: return mknodat(a.i(0), a.s(1), mode_t(a.v[2]), dev_t(a.v[3]));
    case SYS_utimensat:
      if (a.s(1) == nullptr) break;  // futimens form
      return utimensat(a.i(0), a.s(1), a.p<const timespec>(2), a.i(3));
    case SYS_truncate: return truncate(a.s(0), off_t(a.v[1]));
    case SYS_statfs: return statfs(a.s(0), a.p<struct statfs>(1));
    case SYS_chdir: return chdir(a.s(0));
    case SYS_fchdir: return fchdir(a.i(0));
    case SYS_getcwd: return getcwd_call(a);
    case SYS_setxattr: return setxattr(a.s(0), a.s(1), a.p<const void>(2), size_t(a.v[3]), a.i(4));
    case SYS_lsetxattr: return lsetxattr(a.s(0), a.s(1), a.p<const void>(2), size_t(a.v[3]), a.i(4));
    case SYS_getxattr: return getxattr(a.s(0), a.s(1), a.p<void>(2), size_t(a.v[3]));
    case SYS_lgetxattr: return lgetxattr(a.s(0), a.s(1), a.p<void>(2), size_t(a.v[3]));
    case SYS_listxattr: return listxattr(a.s(0), a.p<char>(1), size_t(a.v[2]));
    case SYS_llistxattr: return llistxattr(a.s(0), a.p<char>(1), size_t(a.v[2]));
    case SYS_removexattr: return removexattr(a.s(0), a.s(1));
    case SYS_lremovexattr: return lremovexattr(a.s(0), a.s(1));
    case SYS_execve: return execve(a.s(0), a.p<char* const>(1), a.p<char* const>(2));
    case SYS_execveat: return execveat(a.i(0), a.s(1), a.p<char* const>(2), a.p<char* const>(3), a.i(4));
  }
  return kNotMine;
}

// Calls whose fd bookkeeping or address mapping lives in the library's hooks.
long fd_call(long nr, const Args& a) {
  switch (nr) {
    case SYS_close:
      if (fd_protected(a.i(0))) return fail_with(-EBADF, -1L);  // the library's own
      return close(a.i(0));
    case SYS_close_range: return close_range(a.u(0), a.u(1), a.i(2));  // skips the library's
#ifdef SYS_dup2
    case SYS_dup2: return dup2(a.i(0), a.i(1));  // ours move away first; records follow
#endif
    case SYS_dup3: return dup3(a.i(0), a.i(1), a.i(2));
    case SYS_dup: return dup(a.i(0));
    case SYS_fcntl: return fcntl(a.i(0), a.i(1), a.v[2]);  // F_DUPFD: the copy's inside path
    case SYS_getdents64: return getdents64(a.i(0), a.p<void>(1), size_t(a.v[2]));  // union, hidden names
    case SYS_bind: return bind(a.i(0), a.p<const sockaddr>(1), socklen_t(a.v[2]));
    case SYS_connect: return connect(a.i(0), a.p<const sockaddr>(1), socklen_t(a.v[2]));
    case SYS_accept: return accept(a.i(0), a.p<sockaddr>(1), a.p<socklen_t>(2));
    case SYS_accept4: return accept4(a.i(0), a.p<sockaddr>(1), a.p<socklen_t>(2), a.i(3));
    case SYS_getsockname: return getsockname(a.i(0), a.p<sockaddr>(1), a.p<socklen_t>(2));
    case SYS_getpeername: return getpeername(a.i(0), a.p<sockaddr>(1), a.p<socklen_t>(2));
    case SYS_sendto:
      return sendto(a.i(0), a.p<const void>(1), size_t(a.v[2]), a.i(3), a.p<const sockaddr>(4), socklen_t(a.v[5]));
    case SYS_recvfrom:
      return recvfrom(a.i(0), a.p<void>(1), size_t(a.v[2]), a.i(3), a.p<sockaddr>(4), a.p<socklen_t>(5));
    case SYS_sendmsg: return sendmsg(a.i(0), a.p<const msghdr>(1), a.i(2));
    case SYS_recvmsg: return recvmsg(a.i(0), a.p<msghdr>(1), a.i(2));
  }
  return kNotMine;
}

}  // namespace

HOOK long syscall(long nr, ...) {
  Args a;
  va_list ap;
  va_start(ap, nr);
  for (long& v : a.v) v = va_arg(ap, long);
  va_end(ap);
  ensure_init();
  if (nr == SYS_io_uring_setup && redirect_on()) {
    errno = ENOSYS;
    return -1;
  }
  if (g_state.db_ok) {
    long r = path_call(nr, a);
    if (r == kNotMine) r = fd_call(nr, a);
    if (r != kNotMine) return r;
  }
  return REAL(syscall)(nr, a.v[0], a.v[1], a.v[2], a.v[3], a.v[4], a.v[5]);
}
