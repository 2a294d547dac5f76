// Temporary files: mkstemp and its variants, mkdtemp, tmpfile. glibc creates them with
// internal calls our hooks do not see, so a template under a rule is filled in here and
// created through the resolver (the template keeps its inside path).
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <atomic>

#include "intercept/hook.hpp"
#include "intercept/sys.hpp"

using namespace envrun::icpt;

namespace {

constexpr int kAttempts = 238328;  // 62^3, as glibc

// True when the template lies where a rule applies (or its resolution fails).
bool ruled(const char* tmpl) {
  ensure_init();
  if (!redirect_on() || tmpl == nullptr) return false;
  Resolved out;
  return resolve(AT_FDCWD, tmpl, Op::Create, AT_SYMLINK_NOFOLLOW, out) != 0 || out.redirected;
}

// Fill the six X before `suffix` bytes with random letters and digits.
bool fill(char* tmpl, int suffix) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  static std::atomic<uint64_t> counter{0};
  size_t n = strlen(tmpl);
  if (suffix < 0 || n < size_t(6 + suffix)) return false;
  char* x = tmpl + n - suffix - 6;
  if (memcmp(x, "XXXXXX", 6) != 0) return false;
  uint64_t v = 0;
  if (sys::raw(SYS_getrandom, sys::L(&v), sizeof v, GRND_NONBLOCK) != long(sizeof v)) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v = uint64_t(ts.tv_nsec) ^ (uint64_t(ts.tv_sec) << 20) ^ (uint64_t(sys::gettid()) << 40);
  }
  v += counter.fetch_add(0x9e3779b97f4a7c15ull, std::memory_order_relaxed);
  for (int i = 0; i < 6; ++i, v /= 62) x[i] = letters[v % 62];
  return true;
}

// The X part goes back to X between attempts (fill checks for it).
void reset(char* tmpl, int suffix) { memcpy(tmpl + strlen(tmpl) - suffix - 6, "XXXXXX", 6); }

int make_temp_file(char* tmpl, int suffix, int flags) {
  for (int i = 0; i < kAttempts; ++i) {
    if (!fill(tmpl, suffix)) return fail_with(-EINVAL, -1);
    int fd = open_redirected(AT_FDCWD, tmpl, O_RDWR | O_CREAT | O_EXCL | (flags & ~O_ACCMODE), 0600);
    if (fd >= 0 || errno != EEXIST) return fd;
    reset(tmpl, suffix);
  }
  return fail_with(-EEXIST, -1);
}

int mkostemps_hooked(char* tmpl, int suffix, int flags) {
  if (!ruled(tmpl)) return REAL(mkostemps)(tmpl, suffix, flags);
  return make_temp_file(tmpl, suffix, flags);
}

}  // namespace

HOOK int mkstemp(char* tmpl) { return mkostemps_hooked(tmpl, 0, 0); }
HOOK int mkstemp64(char* tmpl) { return mkostemps_hooked(tmpl, 0, 0); }
HOOK int mkostemp(char* tmpl, int flags) { return mkostemps_hooked(tmpl, 0, flags); }
HOOK int mkostemp64(char* tmpl, int flags) { return mkostemps_hooked(tmpl, 0, flags); }
HOOK int mkstemps(char* tmpl, int suffix) { return mkostemps_hooked(tmpl, suffix, 0); }
HOOK int mkstemps64(char* tmpl, int suffix) { return mkostemps_hooked(tmpl, suffix, 0); }
HOOK int mkostemps(char* tmpl, int suffix, int flags) { return mkostemps_hooked(tmpl, suffix, flags); }
HOOK int mkostemps64(char* tmpl, int suffix, int flags) { return mkostemps_hooked(tmpl, suffix, flags); }

HOOK char* mkdtemp(char* tmpl) noexcept {
  if (!ruled(tmpl)) return REAL(mkdtemp)(tmpl);
  for (int i = 0; i < kAttempts; ++i) {
    if (!fill(tmpl, 0)) return fail_with<char*>(-EINVAL, nullptr);
    if (mkdir(tmpl, 0700) == 0) return tmpl;  // our hook: through the rules
    if (errno != EEXIST) return nullptr;
    reset(tmpl, 0);
  }
  return fail_with<char*>(-EEXIST, nullptr);
}

// tmpfile() under a rule for P_tmpdir; *handled false: glibc's own.
static FILE* temp_file(bool* handled) {
  char dir[] = P_tmpdir;
  *handled = ruled(dir);
  if (!*handled) return nullptr;
  int fd = open_redirected(AT_FDCWD, dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {  // no O_TMPFILE there: a named file, unlinked at once
    char tmpl[] = P_tmpdir "/tmpfXXXXXX";
    fd = make_temp_file(tmpl, 0, O_CLOEXEC);
    if (fd < 0) return nullptr;
    unlink(tmpl);
  }
  FILE* f = fdopen(fd, "w+");
  if (f == nullptr) {
    ErrnoKeeper keep;
    close(fd);
  }
  return f;
}

HOOK FILE* tmpfile() {
  bool handled;
  FILE* f = temp_file(&handled);
  return handled ? f : REAL(tmpfile)();
}
HOOK FILE* tmpfile64() {
  bool handled;
  FILE* f = temp_file(&handled);
  return handled ? f : REAL(tmpfile64)();
}
