// dlopen/dlmopen of a path (a name with '/') go through the redirect rules (Op::Exec):
// the library is loaded from its real path. A bare name is searched by the loader along
// the *caller's* RUNPATH, and glibc finds the caller from the return address: those calls
// must reach glibc as a tail call (a jump), so that the caller it sees is the application's
// object and not this library. Names with '$' (DSTs such as $ORIGIN) are the loader's too.
// A path a rule refuses (hide: ENOENT, ...) fails through the loader with a path that
// cannot exist, so that dlerror() has a message.
#include <dlfcn.h>
#include <string.h>

#include "intercept/hook.hpp"
#include "intercept/resolved_path.hpp"

using namespace envrun::icpt;

namespace {

bool is_path(const char* file) {
  return file != nullptr && strchr(file, '/') != nullptr && strchr(file, '$') == nullptr;
}

constexpr char kRefused[] = "/proc/self/fd/-1";  // never a directory: ENOENT from the loader

// Map `file` into buf (PATH_MAX bytes); returns what the loader gets.
const char* map_library(const char* file, char* buf) {
  Resolved res;
  int rc = resolve(AT_FDCWD, file, Op::Exec, 0, res);
  if (rc == 0 && !res.redirected) return file;
  if (rc == 0 && resolved_path_string(res, buf, PATH_MAX) >= 0) return buf;
  size_t k = sizeof kRefused - 1, n = strnlen(file, PATH_MAX - k - 2);
  memcpy(buf, kRefused, k);
  if (file[0] != '/') buf[k++] = '/';
  memcpy(buf + k, file, n);
  buf[k + n] = '\0';
  return buf;
}

// dlopen's chain (the exec class): redirect maps the file (a refused one becomes a path the
// loader cannot open, so dlerror() explains the failure); the real step loads it.
template <class Load>
struct DlSteps : NoSteps {
  Load load;
  char buf[PATH_MAX];
  explicit DlSteps(Load l) : load(l) {}
  bool redirect(Call& c) {
    c.path = map_library(c.path, buf);
    return true;
  }
  void real(Call& c) {
    c.ext = load(c.path);
    c.failed = c.ext == nullptr;
  }
};

template <class Load>
void* through_chain(const char* file, Load load) {
  Call c;
  c.cls = CallClass::Exec;
  c.op = Op::Exec;
  c.path = file;
  DlSteps<Load> h(load);
  run_chain(c, plan_for(CallClass::Exec, live_mask()), h);
  return c.ext;
}

__attribute__((noinline)) void* dlopen_path(const char* file, int mode) {
  return through_chain(file, [mode](const char* f) { return REAL(dlopen)(f, mode); });
}

__attribute__((noinline)) void* dlmopen_path(Lmid_t lmid, const char* file, int mode) {
  return through_chain(file, [lmid, mode](const char* f) { return REAL(dlmopen)(lmid, f, mode); });
}

}  // namespace

// optimize("O2"): the sibling call below must be a jump even in a -O0 build.
HOOK __attribute__((optimize("O2", "optimize-sibling-calls"))) void* dlopen(const char* file, int mode) {
  ensure_init();
  if (is_path(file) && redirect_on()) return dlopen_path(file, mode);
  return REAL(dlopen)(file, mode);
}

HOOK __attribute__((optimize("O2", "optimize-sibling-calls"))) void* dlmopen(Lmid_t lmid, const char* file, int mode) {
  ensure_init();
  if (is_path(file) && redirect_on()) return dlmopen_path(lmid, file, mode);
  return REAL(dlmopen)(lmid, file, mode);
}
