// Transfers between two fds inside the kernel (sendfile, splice, copy_file_range: the bytes
// are read from one fd and written to the other, and count as both) and stdio's block
// calls (fread, fwrite and their _unlocked forms: the bytes the application handed over or
// got, on the stream's fd; stdio's own read/write calls inside libc are not seen by the
// hooks, so nothing is counted twice). io_meter.hpp has the shape of every hook.
#include <fcntl.h>
#include <stdio.h>
#include <sys/sendfile.h>

#include "intercept/hook.hpp"
#include "intercept/io_meter.hpp"

using namespace envrun::icpt;

namespace {

void both(const Plan& p, int in, int out, ssize_t r) {
  metered_in(p, in, r);
  metered_out(p, out, r);
}

// The stream's fd (-1 for memory streams: not counted), asked only when there is something
// to count.
int fd_of(const Plan& p, FILE* f, size_t items) { return p.meter && items > 0 && f ? fileno_unlocked(f) : -1; }

}  // namespace

HOOK ssize_t sendfile(int out, int in, off_t* off, size_t n) {
  const Plan& p = io_plan();
  ssize_t r = REAL(sendfile)(out, in, off, n);
  both(p, in, out, r);
  return r;
}

HOOK ssize_t sendfile64(int out, int in, off64_t* off, size_t n) {
  const Plan& p = io_plan();
  ssize_t r = REAL(sendfile64)(out, in, off, n);
  both(p, in, out, r);
  return r;
}

HOOK ssize_t splice(int in, off64_t* in_off, int out, off64_t* out_off, size_t n, unsigned flags) {
  const Plan& p = io_plan();
  ssize_t r = REAL(splice)(in, in_off, out, out_off, n, flags);
  both(p, in, out, r);
  return r;
}

HOOK ssize_t copy_file_range(int in, off64_t* in_off, int out, off64_t* out_off, size_t n, unsigned flags) {
  const Plan& p = io_plan();
  ssize_t r = REAL(copy_file_range)(in, in_off, out, out_off, n, flags);
  both(p, in, out, r);
  return r;
}

HOOK size_t fread(void* buf, size_t size, size_t items, FILE* f) {
  const Plan& p = io_plan();
  size_t r = REAL(fread)(buf, size, items, f);
  if (r > 0) metered_in(p, fd_of(p, f, r), ssize_t(r * size));
  return r;
}

HOOK size_t fread_unlocked(void* buf, size_t size, size_t items, FILE* f) {
  const Plan& p = io_plan();
  size_t r = REAL(fread_unlocked)(buf, size, items, f);
  if (r > 0) metered_in(p, fd_of(p, f, r), ssize_t(r * size));
  return r;
}

HOOK size_t fwrite(const void* buf, size_t size, size_t items, FILE* f) {
  const Plan& p = io_plan();
  size_t r = REAL(fwrite)(buf, size, items, f);
  if (r > 0) metered_out(p, fd_of(p, f, r), ssize_t(r * size));
  return r;
}

HOOK size_t fwrite_unlocked(const void* buf, size_t size, size_t items, FILE* f) {
  const Plan& p = io_plan();
  size_t r = REAL(fwrite_unlocked)(buf, size, items, f);
  if (r > 0) metered_out(p, fd_of(p, f, r), ssize_t(r * size));
  return r;
}
