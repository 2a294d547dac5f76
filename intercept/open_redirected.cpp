// open through the rules in as few system calls as possible: override and readonly rules
// open beneath the rule's cached directory fd with one openat2(RESOLVE_BENEATH); the others
// resolve first. Counts kOpens / kOpenFailures; remembers the inside path of the new fd.
#include <errno.h>
#include <linux/openat2.h>

#include "intercept/fd_table.hpp"
#include "intercept/resolve_internal.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

namespace {

int counted(int fd) {
  count(fd >= 0 ? ictl::kOpens : ictl::kOpenFailures);
  return fd;
}

int fail(int neg) {
  errno = -neg;
  return counted(-1);
}

// The one-call path; returns the fd, -errno, or 1 when the general path must decide.
int open_beneath(const idb::FileRule& r, InsidePath& in, int flags, unsigned mode) {
  auto m = idb::FileMode(r.mode);
  bool writes = (flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND)) != O_RDONLY;
  if (m != idb::FileMode::Override && !(m == idb::FileMode::ReadOnly && !writes)) return 1;
  size_t pre = rule_prefix(r);
  if (in.n - pre == 0 || (flags & O_TMPFILE) == O_TMPFILE) return 1;
  int root = layer_root_fd(r, Layer::Outside);
  if (root < 0) return 1;
  if (in.trailing) {  // keep the caller's '/': the final component must be a directory
    if (in.n + 2 > sizeof in.s) return -ENAMETOOLONG;
    in.s[in.n] = '/';
    in.s[in.n + 1] = '\0';
  }
  unsigned m2 = (flags & (O_CREAT | O_TMPFILE)) ? (mode & 07777) : 0;
  int fd = sys::openat2(root, in.s + pre + 1, unsigned(flags), m2, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
  in.s[in.n] = '\0';
  if (fd == -EXDEV || fd == -ENOSYS || fd == -EINVAL || fd == -EPERM || fd == -EAGAIN) return 1;
  return fd;
}

}  // namespace

int open_redirected(int dirfd, const char* path, int flags, unsigned mode) {
  if (!redirect_on()) return counted(REAL(openat)(dirfd, path, flags, mode));
  InsidePath in;
  bool base_real = false;
  int rc = inside_of(dirfd, path, in, &base_real);
  if (rc > 0) {
    int fd = REAL(openat)(dirfd, path, flags, mode);
    if (fd >= 0) fdt_forget(fd);
    return counted(fd);
  }
  if (rc < 0) return fail(rc);
  if (const idb::FileRule* r = g_state.db.match(in.s, in.n)) {
    if (idb::FileMode(r->mode) == idb::FileMode::Hide) {
      count(ictl::kDenied);
      return fail(-ENOENT);
    }
    int fd = open_beneath(*r, in, flags, mode);
    if (fd != 1) {
      count(ictl::kRedirected);
      if (fd < 0) return fail(fd);
      fdt_set(fd, in.s, in.n);
      return counted(fd);
    }
  }
  Resolved out;
  reset_resolved(out, dirfd, path);
  int at_flags;
  Op op = open_op(flags, &at_flags);
  rc = resolve_inside(in, op, at_flags, flags, base_real, out);
  if (rc < 0) return fail(rc);
  int fd = REAL(openat)(out.dirfd, out.path, flags, mode);
  if (fd >= 0) {
    if (out.rule != nullptr) fdt_set(fd, in.s, in.n);
    else fdt_forget(fd);
  }
  return counted(fd);
}

}  // namespace envrun::icpt
