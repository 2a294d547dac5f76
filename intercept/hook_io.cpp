// The read/write family on any fd: read, write, pread, pwrite, readv, writev, preadv,
// pwritev, preadv2, pwritev2 (+64 and the fortified __read_chk/__pread_chk entry points).
// The meter counts the bytes (kBytesRead/kBytesWritten; on sockets also the network bytes
// and the transaction turns). io_meter.hpp has the shape of every hook.
#include <sys/uio.h>
#include <unistd.h>

#include "intercept/hook.hpp"
#include "intercept/io_meter.hpp"

extern "C" {
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen);
ssize_t __pread_chk(int fd, void* buf, size_t n, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void* buf, size_t n, off64_t off, size_t buflen);
}

using namespace envrun::icpt;

HOOK ssize_t read(int fd, void* buf, size_t n) {
  const Plan& p = io_plan();
  ssize_t r = REAL(read)(fd, buf, n);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  const Plan& p = io_plan();
  ssize_t r = REAL(__read_chk)(fd, buf, n, buflen);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t write(int fd, const void* buf, size_t n) {
  const Plan& p = io_plan();
  ssize_t r = REAL(write)(fd, buf, n);
  metered_out(p, fd, r);
  return r;
}

HOOK ssize_t pread(int fd, void* buf, size_t n, off_t off) {
  const Plan& p = io_plan();
  ssize_t r = REAL(pread)(fd, buf, n, off);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t pread64(int fd, void* buf, size_t n, off64_t off) {
  const Plan& p = io_plan();
  ssize_t r = REAL(pread64)(fd, buf, n, off);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t __pread_chk(int fd, void* buf, size_t n, off_t off, size_t buflen) {
  const Plan& p = io_plan();
  ssize_t r = REAL(__pread_chk)(fd, buf, n, off, buflen);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t __pread64_chk(int fd, void* buf, size_t n, off64_t off, size_t buflen) {
  const Plan& p = io_plan();
  ssize_t r = REAL(__pread64_chk)(fd, buf, n, off, buflen);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  const Plan& p = io_plan();
  ssize_t r = REAL(pwrite)(fd, buf, n, off);
  metered_out(p, fd, r);
  return r;
}

HOOK ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  const Plan& p = io_plan();
  ssize_t r = REAL(pwrite64)(fd, buf, n, off);
  metered_out(p, fd, r);
  return r;
}

HOOK ssize_t readv(int fd, const iovec* iov, int cnt) {
  const Plan& p = io_plan();
  ssize_t r = REAL(readv)(fd, iov, cnt);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t writev(int fd, const iovec* iov, int cnt) {
  const Plan& p = io_plan();
  ssize_t r = REAL(writev)(fd, iov, cnt);
  metered_out(p, fd, r);
  return r;
}

HOOK ssize_t preadv(int fd, const iovec* iov, int cnt, off_t off) {
  const Plan& p = io_plan();
  ssize_t r = REAL(preadv)(fd, iov, cnt, off);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t preadv64(int fd, const iovec* iov, int cnt, off64_t off) {
  const Plan& p = io_plan();
  ssize_t r = REAL(preadv64)(fd, iov, cnt, off);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t pwritev(int fd, const iovec* iov, int cnt, off_t off) {
  const Plan& p = io_plan();
  ssize_t r = REAL(pwritev)(fd, iov, cnt, off);
  metered_out(p, fd, r);
  return r;
}

HOOK ssize_t pwritev64(int fd, const iovec* iov, int cnt, off64_t off) {
  const Plan& p = io_plan();
  ssize_t r = REAL(pwritev64)(fd, iov, cnt, off);
  metered_out(p, fd, r);
  return r;
}

HOOK ssize_t preadv2(int fd, const iovec* iov, int cnt, off_t off, int flags) {
  const Plan& p = io_plan();
  ssize_t r = REAL(preadv2)(fd, iov, cnt, off, flags);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t preadv64v2(int fd, const iovec* iov, int cnt, off64_t off, int flags) {
  const Plan& p = io_plan();
  ssize_t r = REAL(preadv64v2)(fd, iov, cnt, off, flags);
  metered_in(p, fd, r);
  return r;
}

HOOK ssize_t pwritev2(int fd, const iovec* iov, int cnt, off_t off, int flags) {
  const Plan& p = io_plan();
  ssize_t r = REAL(pwritev2)(fd, iov, cnt, off, flags);
  metered_out(p, fd, r);
  return r;
}

HOOK ssize_t pwritev64v2(int fd, const iovec* iov, int cnt, off64_t off, int flags) {
  const Plan& p = io_plan();
  ssize_t r = REAL(pwritev64v2)(fd, iov, cnt, off, flags);
  metered_out(p, fd, r);
  return r;
}
