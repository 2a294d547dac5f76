// The virtual working directory (cwd.hpp).
#include "intercept/cwd.hpp"

#include <errno.h>

#include "intercept/lib_state.hpp"
#include "intercept/resolve.hpp"
#include "intercept/resolve_internal.hpp"
#include "intercept/seqbuf.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

namespace {

constinit SeqPath g_cwd;
constinit std::atomic<bool> g_plain{true};
constinit std::atomic<bool> g_root{false};
constinit std::atomic<bool> g_writing{false};

void store(const char* p, size_t n, bool plain) {
  bool expected = false;
  while (!g_writing.compare_exchange_weak(expected, true, std::memory_order_acquire)) expected = false;
  g_cwd.write(p, n);
  g_root.store(!plain && n == 1 && p[0] == '/' && g_state.db.match("/", 1) == nullptr, std::memory_order_release);
  g_plain.store(plain, std::memory_order_release);
  g_writing.store(false, std::memory_order_release);
}

}  // namespace

void cwd_refresh() {
  if (!g_state.db_ok) return;
  char real[PATH_MAX];
  long n = sys::getcwd(real, sizeof real);
  if (n <= 0 || real[0] != '/') {  // unreachable cwd: leave relative paths to the kernel
    g_root.store(false, std::memory_order_release);
    g_plain.store(true, std::memory_order_release);
    return;
  }
  char inside[PATH_MAX];
  long k = to_inside(real, inside, sizeof inside);
  if (k >= 0) return store(inside, size_t(k), false);
  size_t len = strlen(real);
  store(real, len, dir_plain(real, len));
}

void cwd_init() { cwd_refresh(); }

void cwd_set(const char* path, size_t len) { store(path, len, dir_plain(path, len)); }

bool cwd_is_root() { return g_root.load(std::memory_order_acquire); }

bool cwd_plain() { return g_plain.load(std::memory_order_acquire); }

long cwd_copy(char* out, size_t cap) {
  long n = g_cwd.read(out, cap);
  return n < 0 ? -ERANGE : n;
}

}  // namespace envrun::icpt
