// open through the chain (chain.hpp): the redirect step decides and may refuse (hide,
// readonly writes); override and readonly reads are then opened by the real step beneath
// the rule's cached directory fd with one openat2(RESOLVE_BENEATH); the others resolve in
// the redirect step. The meter's leave step counts kOpens / kOpenFailures. The new fd
// remembers its inside path.
#include <errno.h>
#include <linux/openat2.h>

#include "intercept/chain.hpp"
#include "intercept/fd_table.hpp"
#include "intercept/open_chain.hpp"
#include "intercept/resolve_internal.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

namespace {

// Override, and readonly without writing: one openat2 beneath the rule's root may do.
bool beneath_candidate(const idb::FileRule& r, int flags) {
  auto m = idb::FileMode(r.mode);
  bool writes = (flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND)) != O_RDONLY;
  return m == idb::FileMode::Override || (m == idb::FileMode::ReadOnly && !writes);
}

// The one-call path; returns the fd, -errno, or 1 when the general path must decide.
int open_beneath(const idb::FileRule& r, InsidePath& in, int flags, unsigned mode) {
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

// The general resolution; rewrites c's dirfd/path.
bool resolve_rest(Call& c, OpenRoute& r) {
  reset_resolved(r.out, c.dirfd, c.path);
  int at_flags;
  Op op = open_op(c.flags, &at_flags);
  int rc = resolve_inside(r.in, op, at_flags, c.flags, r.base_real, r.out);
  if (rc < 0) return refuse(c, rc);
  c.dirfd = r.out.dirfd;
  c.path = r.out.path;
  r.ruled = r.out.rule != nullptr;
  return true;
}

}  // namespace

bool open_redirect_step(Call& c, OpenRoute& r) {
  int rc = inside_of(c.dirfd, c.path, r.in, &r.base_real);
  if (rc > 0) return true;  // under no rule: the caller's own arguments
  if (rc < 0) return refuse(c, rc);
  if (const idb::FileRule* fr = g_state.db.match(r.in.s, r.in.n)) {
    if (idb::FileMode(fr->mode) == idb::FileMode::Hide) {
      note_denied();
      return refuse(c, -ENOENT);
    }
    if (beneath_candidate(*fr, c.flags)) {
      r.beneath = fr;
      return true;
    }
  }
  return resolve_rest(c, r);
}

void open_real_step(Call& c, OpenRoute& r) {
  int fd = 1;
  if (r.beneath != nullptr) {
    fd = open_beneath(*r.beneath, r.in, c.flags, c.mode);
    if (fd != 1) c.redirected = r.ruled = true;
    else if (!resolve_rest(c, r)) return;
  }
  if (fd == 1) {
    fd = REAL(openat)(c.dirfd, c.path, c.flags, c.mode);
    if (fd < 0) fd = -errno;
  }
  if (fd < 0) {
    refuse(c, fd);
    return;
  }
  if (r.ruled) fdt_set(fd, r.in.s, r.in.n);
  else fdt_forget(fd);
  c.result = fd;
}

int open_chain(const Plan& p, int dirfd, const char* path, int flags, unsigned mode) {
  Call c;
  c.meter = MeterAs::Open;
  c.dirfd = dirfd;
  c.path = path;
  c.flags = flags;
  c.mode = mode;
  OpenSteps h;
  run_chain(c, p, h);
  if (c.failed) {
    errno = c.err;
    return -1;
  }
  return int(c.result);
}

int open_redirected(int dirfd, const char* path, int flags, unsigned mode) {
  ensure_init();
  return open_chain(plan_for(CallClass::Path, live_mask()), dirfd, path, flags, mode);
}

}  // namespace envrun::icpt
