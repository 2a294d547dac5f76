// The open family: open/openat/creat (+64), the fortify __open*_2 entry points, fopen/
// freopen (+64). All run the chain (open_chain(): one openat2 for override/readonly).
#include <stdarg.h>
#include <stdio.h>

#include "intercept/fd_table.hpp"
#include "intercept/hook.hpp"
#include "intercept/open_chain.hpp"

using namespace envrun::icpt;

namespace {

unsigned mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, unsigned) : 0;
}

int open_at(int dirfd, const char* path, int flags, unsigned mode) {
  ensure_init();
  const Plan& p = plan_for(CallClass::Path, live_mask());
  if (fast(p, dirfd, path)) {
    int fd = REAL(openat)(dirfd, path, flags, mode);
    if (fd >= 0) fdt_forget(fd);
    meter_plain(p, MeterAs::Open, fd >= 0);
    return fd;
  }
  return open_chain(p, dirfd, path, flags, mode);
}

// open(2) flags of an fopen mode string ("r", "w+", "ae", "wx", ...).
int fopen_flags(const char* mode) {
  int acc = O_RDONLY, extra = 0;
  switch (mode[0]) {
    case 'w': acc = O_WRONLY; extra = O_CREAT | O_TRUNC; break;
    case 'a': acc = O_WRONLY; extra = O_CREAT | O_APPEND; break;
    default: break;
  }
  for (const char* p = mode + 1; *p && *p != ','; ++p) {
    if (*p == '+') acc = O_RDWR;
    else if (*p == 'x') extra |= O_EXCL;
    else if (*p == 'e') extra |= O_CLOEXEC;
  }
  return acc | extra;
}

// fopen's steps: redirect resolves for the mode's open flags, the real fopen gets the result.
template <class Real>
struct FopenSteps : NoSteps {
  Real fn;
  Resolved out;
  explicit FopenSteps(Real f) : fn(f) {}
  bool redirect(Call& c) {
    int rc = resolve_open(c.dirfd, c.path, c.flags, out);
    if (rc < 0) return refuse(c, rc);
    c.path = out.path;
    return true;
  }
  void real(Call& c) {
    FILE* f = fn(c.path);
    c.ext = f;
    if (f == nullptr) c.failed = true, c.err = errno;
    else fdt_forget(fileno(f));
  }
};

template <class Real>
FILE* fopen_with(const char* path, const char* mode, Real real) {
  ensure_init();
  const Plan& p = plan_for(CallClass::Path, live_mask());
  if (mode == nullptr || fast(p, AT_FDCWD, path)) {
    FILE* f = real(path);
    meter_plain(p, MeterAs::Open, f != nullptr);
    return f;
  }
  Call c;
  c.meter = MeterAs::Open;
  c.path = path;
  c.flags = fopen_flags(mode);
  FopenSteps<Real> h(real);
  run_chain(c, p, h);
  if (c.failed) return fail_with<FILE*>(-c.err, nullptr);
  return static_cast<FILE*>(c.ext);
}

}  // namespace

HOOK int open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  unsigned mode = mode_arg(flags, ap);
  va_end(ap);
  return open_at(AT_FDCWD, path, flags, mode);
}

HOOK int open64(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  unsigned mode = mode_arg(flags, ap);
  va_end(ap);
  return open_at(AT_FDCWD, path, flags, mode);
}

HOOK int openat(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  unsigned mode = mode_arg(flags, ap);
  va_end(ap);
  return open_at(dirfd, path, flags, mode);
}

HOOK int openat64(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  unsigned mode = mode_arg(flags, ap);
  va_end(ap);
  return open_at(dirfd, path, flags, mode);
}

HOOK int creat(const char* path, mode_t mode) { return open_at(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
HOOK int creat64(const char* path, mode_t mode) { return open_at(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

// _FORTIFY_SOURCE entry points (called without a mode when the flags need none).
HOOK int __open_2(const char* path, int flags) { return open_at(AT_FDCWD, path, flags, 0); }
HOOK int __open64_2(const char* path, int flags) { return open_at(AT_FDCWD, path, flags, 0); }
HOOK int __openat_2(int dirfd, const char* path, int flags) { return open_at(dirfd, path, flags, 0); }
HOOK int __openat64_2(int dirfd, const char* path, int flags) { return open_at(dirfd, path, flags, 0); }

HOOK FILE* fopen(const char* path, const char* mode) {
  return fopen_with(path, mode, [mode](const char* p) { return REAL(fopen)(p, mode); });
}
HOOK FILE* fopen64(const char* path, const char* mode) {
  return fopen_with(path, mode, [mode](const char* p) { return REAL(fopen64)(p, mode); });
}
HOOK FILE* freopen(const char* path, const char* mode, FILE* stream) {
  if (path == nullptr) return REAL(freopen)(path, mode, stream);  // same file, new mode
  return fopen_with(path, mode, [mode, stream](const char* p) { return REAL(freopen)(p, mode, stream); });
}
HOOK FILE* freopen64(const char* path, const char* mode, FILE* stream) {
  if (path == nullptr) return REAL(freopen64)(path, mode, stream);
  return fopen_with(path, mode, [mode, stream](const char* p) { return REAL(freopen64)(p, mode, stream); });
}
