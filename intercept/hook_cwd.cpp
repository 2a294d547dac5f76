// What the application sees of paths: chdir/fchdir keep the virtual cwd; getcwd, getwd,
// get_current_dir_name return it; realpath and canonicalize_file_name return inside paths;
// readlink(at) resolves through the rules and maps /proc/self/{cwd,exe,fd/N} back inside.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intercept/cwd.hpp"
#include "intercept/fd_table.hpp"
#include "intercept/hook.hpp"

using namespace envrun::icpt;

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // getwd is hooked because it exists

namespace {

// After a successful chdir through the resolver.
void note_chdir(const Resolved& out) {
  char inside[PATH_MAX];
  long n = out.rule != nullptr ? result_inside(out, inside, sizeof inside) : -1;
  if (n > 0) cwd_set(inside, size_t(n));
  else cwd_refresh();
}

// Copy s (n bytes) into the caller's buffer, or a malloc'ed one when buf is null (glibc).
char* give(const char* s, size_t n, char* buf, size_t size) {
  if (buf == nullptr) {
    size_t cap = size > n ? size : n + 1;
    buf = static_cast<char*>(malloc(cap));
    if (buf == nullptr) return fail_with<char*>(-ENOMEM, nullptr);
  } else if (size < n + 1) {
    return fail_with<char*>(size == 0 ? -EINVAL : -ERANGE, nullptr);
  }
  memcpy(buf, s, n + 1);
  return buf;
}

// "/proc/self/", "/proc/thread-self/" or "/proc/<our pid>/": the rest after it, else null.
const char* proc_self_rest(const char* p) {
  if (strncmp(p, "/proc/", 6) != 0) return nullptr;
  p += 6;
  if (strncmp(p, "self/", 5) == 0) return p + 5;
  if (strncmp(p, "thread-self/", 12) == 0) return p + 12;
  long pid = 0;
  const char* q = p;
  while (*q >= '0' && *q <= '9') pid = pid * 10 + (*q++ - '0');
  if (q == p || *q != '/' || pid != getpid()) return nullptr;
  return q + 1;
}

ssize_t copy_link(const char* s, size_t n, char* buf, size_t size) {
  size_t k = n < size ? n : size;
  memcpy(buf, s, k);
  return ssize_t(k);
}

// readlink of the magic links that name our own files: their inside paths.
// Returns -2 when the link is not one of them (or maps to no rule).
ssize_t proc_link(int dirfd, const char* path, char* buf, size_t size) {
  const char* rest = proc_self_rest(path);
  if (rest == nullptr) return -2;
  char tmp[PATH_MAX];
  if (strcmp(rest, "cwd") == 0) {
    if (cwd_plain()) return -2;
    long n = cwd_copy(tmp, sizeof tmp);
    return n < 0 ? -2 : copy_link(tmp, size_t(n), buf, size);
  }
  if (strcmp(rest, "exe") != 0 && strncmp(rest, "fd/", 3) != 0) return -2;
  char real[PATH_MAX];
  ssize_t n = REAL(readlinkat)(dirfd, path, real, sizeof real - 1);
  if (n <= 0) return n < 0 ? -1 : -2;
  real[n] = '\0';
  long k = to_inside(real, tmp, sizeof tmp);
  return k < 0 ? copy_link(real, size_t(n), buf, size) : copy_link(tmp, size_t(k), buf, size);
}

ssize_t read_link(int dirfd, const char* path, char* buf, size_t size) {
  ensure_init();
  if (!redirect_on() || path == nullptr) return REAL(readlinkat)(dirfd, path, buf, size);
  ssize_t special = proc_link(dirfd, path, buf, size);
  if (special != -2) return special;
  return path_call(dirfd, path, Op::Stat, AT_SYMLINK_NOFOLLOW,
                   [buf, size](int d, const char* p) { return REAL(readlinkat)(d, p, buf, size); });
}

// realpath of a redirected path: the real one, mapped back to the inside view.
char* real_path_of(const char* path, const Resolved& out, char* resolved) {
  if (!out.redirected) return REAL(realpath)(path, resolved);
  char real[PATH_MAX], inside[PATH_MAX];
  if (REAL(realpath)(out.path, real) == nullptr) return nullptr;
  long n = to_inside(real, inside, sizeof inside);
  const char* s = n >= 0 ? inside : real;
  return give(s, n >= 0 ? size_t(n) : strlen(real), resolved, resolved ? PATH_MAX : 0);
}

struct RealpathSteps : NoSteps {
  char* resolved;
  Resolved out;
  explicit RealpathSteps(char* r) : resolved(r) {}
  bool redirect(Call& c) {
    int rc = resolve(AT_FDCWD, c.path, Op::Stat, 0, out);
    return rc < 0 ? refuse(c, rc) : true;
  }
  void real(Call& c) {
    c.ext = real_path_of(c.path, out, resolved);
    if (c.ext == nullptr) c.failed = true, c.err = errno;
  }
};

char* real_path(const char* path, char* resolved) {
  ensure_init();
  const Plan& p = plan_for(CallClass::Path, live_mask());
  if (fast(p, AT_FDCWD, path)) return REAL(realpath)(path, resolved);
  Call c;
  c.path = path;
  RealpathSteps h(resolved);
  run_chain(c, p, h);
  if (c.failed) return fail_with<char*>(-c.err, nullptr);
  return static_cast<char*>(c.ext);
}

}  // namespace

HOOK int chdir(const char* path) noexcept {
  ensure_init();
  if (!redirect_on()) return REAL(chdir)(path);
  // no fast path: the virtual cwd follows every chdir while redirect is on
  return path_chain(plan_for(CallClass::Path, live_mask()), AT_FDCWD, path, Op::Read, 0, [](int, const char* p) {
    int r = REAL(chdir)(p);
    const Resolved* out = current_resolved();
    if (r == 0 && out != nullptr) {
      ErrnoKeeper keep;
      note_chdir(*out);
    }
    return r;
  });
}

HOOK int fchdir(int fd) noexcept {
  ensure_init();
  int r = REAL(fchdir)(fd);
  if (r == 0 && redirect_on()) {
    char inside[PATH_MAX];
    bool plain = true;
    long n = dirfd_inside(fd, inside, sizeof inside, &plain);
    if (n > 0 && !plain) cwd_set(inside, size_t(n));
    else cwd_refresh();
  }
  return r;
}

HOOK char* getcwd(char* buf, size_t size) noexcept {
  ensure_init();
  if (!redirect_on() || cwd_plain()) return REAL(getcwd)(buf, size);
  char tmp[PATH_MAX];
  long n = cwd_copy(tmp, sizeof tmp);
  if (n < 0) return REAL(getcwd)(buf, size);
  return give(tmp, size_t(n), buf, size);
}

HOOK char* __getcwd_chk(char* buf, size_t size, size_t buflen) noexcept {
  return getcwd(buf, size < buflen ? size : buflen);
}

HOOK char* getwd(char* buf) noexcept {
  ensure_init();
  if (!redirect_on() || cwd_plain()) return REAL(getwd)(buf);
  return getcwd(buf, PATH_MAX);
}

HOOK char* get_current_dir_name() noexcept {
  ensure_init();
  if (!redirect_on() || cwd_plain()) return REAL(get_current_dir_name)();
  return getcwd(nullptr, 0);
}

HOOK char* realpath(const char* path, char* resolved) noexcept { return real_path(path, resolved); }
HOOK char* __realpath_chk(const char* path, char* resolved, size_t) noexcept { return real_path(path, resolved); }
HOOK char* canonicalize_file_name(const char* path) noexcept { return real_path(path, nullptr); }

HOOK ssize_t readlink(const char* path, char* buf, size_t size) noexcept {
  return read_link(AT_FDCWD, path, buf, size);
}
HOOK ssize_t readlinkat(int dirfd, const char* path, char* buf, size_t size) noexcept {
  return read_link(dirfd, path, buf, size);
}
HOOK ssize_t __readlink_chk(const char* path, char* buf, size_t size, size_t) noexcept {
  return read_link(AT_FDCWD, path, buf, size);
}
HOOK ssize_t __readlinkat_chk(int dirfd, const char* path, char* buf, size_t size, size_t) noexcept {
  return read_link(dirfd, path, buf, size);
}
