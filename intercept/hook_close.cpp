// close and friends: the library's own fds (layer roots, >= 900) are not the application's
// to close; closing an fd forgets what the library knew about it (inside path, union
// listing, the net interceptor's connection and socket-name records, the meter's fd kind
// and transaction turn); a duplicate gets the meter's record of the original.
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "intercept/dir_union.hpp"
#include "intercept/fd_events.hpp"
#include "intercept/fd_table.hpp"
#include "intercept/hook.hpp"
#include "intercept/layer_fds.hpp"
#include "intercept/meter.hpp"

using namespace envrun::icpt;

namespace {

void forget(int fd) {
  fdt_forget(fd);
  union_forget_fd(fd);
}

// close_range over [first, last] minus the protected fds.
int close_range_unprotected(unsigned first, unsigned last, int flags) {
  int rc = 0, err = 0;
  while (first <= last) {
    int p = next_protected(first);
    unsigned end = (p < 0 || unsigned(p) > last) ? last : unsigned(p) - 1;
    if (p < 0 || unsigned(p) != first) {
      if (REAL(close_range)(first, end, flags) != 0) {
        rc = -1;
        err = errno;
      }
    }
    if (p < 0 || unsigned(p) >= last) break;
    first = unsigned(p) + 1;
  }
  if (rc != 0) errno = err;
  return rc;
}

}  // namespace

HOOK int close(int fd) {
  ensure_init();
  if (fd_protected(fd)) return fail_with(-EBADF, -1);
  meter::flush_thread();  // a server between two connections: its counts reach the page
  forget(fd);
  int r = REAL(close)(fd);
  if (r == 0) note_fd_closed(fd);
  return r;
}

HOOK int close_range(unsigned first, unsigned last, int flags) noexcept {
  ensure_init();
  int r = close_range_unprotected(first, last, flags);
  if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
    fdt_forget_range(first, last);
    union_forget_range(first, last);
    note_fd_range_closed(first, last);
  }
  return r;
}

HOOK void closefrom(int lowfd) noexcept {
  ensure_init();
  unsigned first = lowfd < 0 ? 0u : unsigned(lowfd);
  if (close_range_unprotected(first, ~0u, 0) == 0) {
    fdt_forget_range(first, ~0u);
    union_forget_range(first, ~0u);
    note_fd_range_closed(first, ~0u);
  }
}

HOOK int dup2(int oldfd, int newfd) noexcept {
  ensure_init();
  if (oldfd != newfd) move_protected(newfd);
  int r = REAL(dup2)(oldfd, newfd);
  if (r >= 0 && oldfd != newfd) {
    union_forget_fd(newfd);
    note_fd_closed(newfd);
    meter::fd_dup(oldfd, newfd);
    fdt_dup(oldfd, newfd);
  }
  return r;
}

HOOK int dup3(int oldfd, int newfd, int flags) noexcept {
  ensure_init();
  if (oldfd != newfd) move_protected(newfd);
  int r = REAL(dup3)(oldfd, newfd, flags);
  if (r >= 0) {
    union_forget_fd(newfd);
    note_fd_closed(newfd);
    meter::fd_dup(oldfd, newfd);
    fdt_dup(oldfd, newfd);
  }
  return r;
}

HOOK int dup(int oldfd) noexcept {
  ensure_init();
  int r = REAL(dup)(oldfd);
  if (r >= 0) fdt_dup(oldfd, r), meter::fd_dup(oldfd, r);
  return r;
}

namespace {

// fcntl's third argument is an int or a pointer; read it as a pointer-sized value.
int fcntl_with(int fd, int cmd, va_list ap, int (*real)(int, int, ...)) {
  void* arg = va_arg(ap, void*);
  int r = real(fd, cmd, arg);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) fdt_dup(fd, r), meter::fd_dup(fd, r);
  return r;
}

}  // namespace

HOOK int fcntl(int fd, int cmd, ...) {
  ensure_init();
  va_list ap;
  va_start(ap, cmd);
  int r = fcntl_with(fd, cmd, ap, REAL(fcntl));
  va_end(ap);
  return r;
}

HOOK int fcntl64(int fd, int cmd, ...) {
  ensure_init();
  va_list ap;
  va_start(ap, cmd);
  int r = fcntl_with(fd, cmd, ap, REAL(fcntl64));
  va_end(ap);
  return r;
}

HOOK int fclose(FILE* f) {
  ensure_init();
  int fd = f != nullptr ? fileno(f) : -1;
  if (fd >= 0) forget(fd);
  int r = REAL(fclose)(f);
  if (r == 0 && fd >= 0) note_fd_closed(fd);
  return r;
}
