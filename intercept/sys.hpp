// Raw system calls for the library's own work (resolver walks, copy-up, init).
// They never go through libc's wrappers, so they neither re-enter our hooks (the library
// exports open, close, syscall, ...) nor touch errno: each returns the result or -errno.
// Internal to libenvrun-intercept.so; header-only, async-signal-safe.
#pragma once
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace envrun::icpt::sys {

#if defined(__x86_64__)
inline long raw(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
inline long raw(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}
#else
#error "libenvrun-intercept: add the raw system call sequence of this architecture"
#endif

inline long L(const void* p) { return reinterpret_cast<long>(p); }

inline int openat(int dirfd, const char* path, int flags, unsigned mode = 0) {
  return int(raw(SYS_openat, dirfd, L(path), flags | O_LARGEFILE, mode));
}
// openat2(2) with `how` = {flags, mode, resolve}; -ENOSYS on kernels before 5.6.
inline int openat2(int dirfd, const char* path, uint64_t flags, uint64_t mode, uint64_t resolve) {
  uint64_t how[3] = {flags | O_LARGEFILE, mode, resolve};
  return int(raw(SYS_openat2, dirfd, L(path), L(how), sizeof how));
}
inline int close(int fd) { return int(raw(SYS_close, fd)); }
inline int fstatat(int dirfd, const char* path, struct stat* st, int flags) {
  return int(raw(SYS_newfstatat, dirfd, L(path), L(st), flags));
}
inline int fstat(int fd, struct stat* st) { return int(raw(SYS_fstat, fd, L(st))); }
inline long readlinkat(int dirfd, const char* path, char* buf, size_t n) {
  return raw(SYS_readlinkat, dirfd, L(path), L(buf), long(n));
}
inline int mkdirat(int dirfd, const char* path, unsigned mode) { return int(raw(SYS_mkdirat, dirfd, L(path), mode)); }
inline int unlinkat(int dirfd, const char* path, int flags) { return int(raw(SYS_unlinkat, dirfd, L(path), flags)); }
inline int symlinkat(const char* target, int dirfd, const char* path) {
  return int(raw(SYS_symlinkat, L(target), dirfd, L(path)));
}
inline int linkat(int od, const char* op, int nd, const char* np, int flags) {
  return int(raw(SYS_linkat, od, L(op), nd, L(np), flags));
}
inline int mknodat(int dirfd, const char* path, unsigned mode, unsigned long dev) {
  return int(raw(SYS_mknodat, dirfd, L(path), mode, long(dev)));
}
inline int fchmod(int fd, unsigned mode) { return int(raw(SYS_fchmod, fd, mode)); }
inline int fchownat(int dirfd, const char* path, unsigned uid, unsigned gid, int flags) {
  return int(raw(SYS_fchownat, dirfd, L(path), uid, gid, flags));
}
inline int utimensat(int dirfd, const char* path, const struct timespec* ts, int flags) {
  return int(raw(SYS_utimensat, dirfd, L(path), L(ts), flags));
}
inline long read(int fd, void* buf, size_t n) { return raw(SYS_read, fd, L(buf), long(n)); }
inline long write(int fd, const void* buf, size_t n) { return raw(SYS_write, fd, L(buf), long(n)); }
inline long copy_file_range(int in, int out, size_t n) { return raw(SYS_copy_file_range, in, 0, out, 0, long(n), 0); }
inline long sendfile(int out, int in, size_t n) { return raw(SYS_sendfile, out, in, 0, long(n)); }
inline long getcwd(char* buf, size_t n) { return raw(SYS_getcwd, L(buf), long(n)); }
inline int fcntl(int fd, int cmd, long arg = 0) { return int(raw(SYS_fcntl, fd, cmd, arg)); }
inline int getdents64(int fd, void* buf, size_t n) { return int(raw(SYS_getdents64, fd, L(buf), long(n))); }
inline long lseek(int fd, long off, int whence) { return raw(SYS_lseek, fd, off, whence); }
inline int getpid() { return int(raw(SYS_getpid)); }
inline int gettid() { return int(raw(SYS_gettid)); }
inline int getuid() { return int(raw(SYS_geteuid)); }

// Existence test (no follow): 0, or -errno.
inline int exists_nofollow(int dirfd, const char* path) {
  struct stat st;
  return sys::fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW);
}

// Write a whole message to stderr (best effort, for the one-line warnings).
inline void say(const char* a, const char* b = "", const char* c = "", const char* d = "") {
  const char* parts[4] = {a, b, c, d};
  for (const char* p : parts) {
    size_t n = 0;
    while (p[n]) ++n;
    if (n) sys::write(2, p, n);
  }
}

}  // namespace envrun::icpt::sys
