// The library's process-wide state: the mapped DB, the control page, the resolved indexes
// of the interceptors, the real functions. Internal to libenvrun-intercept.so.
#pragma once
#include <limits.h>

#include <atomic>
#include <cstdint>

#include "intercept/control.h"
#include "intercept/db_view.hpp"

namespace envrun::icpt {

// Kinds of interceptors the library implements (the DB names them; order comes from the DB).
enum class Kind : uint8_t { Unknown = 0, Meter, Redirect, Net, Barrier };

// The page every hook reads before init has mapped the real one (all interceptors off):
// hooks that run before the constructor, or re-enter during it, pass straight through.
extern ictl::ControlPage g_boot_page;

struct LibState {
  idb::DbView db;
  bool db_ok = false;                    // a valid DB is mapped
  ictl::ControlPage* ctl = &g_boot_page; // shared page, or a private one; never null
  bool ctl_shared = false;               // ctl is the instance's page file (an engine reaches it)
  uint32_t chain_len = 0;                // interceptors in the DB, in chain order
  Kind chain[idb::kMaxInterceptors] = {};
  int idx_meter = -1, idx_redirect = -1, idx_net = -1, idx_barrier = -1;
  char self_path[PATH_MAX] = {};         // this library's path (for LD_PRELOAD in children)
  char db_path[PATH_MAX] = {};
  char ctl_path[PATH_MAX] = {};
};

extern LibState g_state;

// 0: not started, 1: in progress, 2: done (successfully or not: then every call passes).
extern std::atomic<int> g_init_state;
void init_slow();

// Called by every hook before it does anything; idempotent and cheap after the first call
// (hooks may run before the library's constructor, e.g. from another library's constructor).
// A hook re-entered from the initialization itself (same thread) returns at once and sees
// the boot page: every interceptor off.
inline void ensure_init() {
  if (__builtin_expect(g_init_state.load(std::memory_order_acquire) != 2, 0)) init_slow();
}

// The live mask (one relaxed load per hooked call).
inline uint64_t live_mask() { return g_state.ctl->enabled.load(std::memory_order_acquire); }
inline bool on(uint64_t mask, int idx) { return idx >= 0 && ((mask >> idx) & 1u); }
inline void count(ictl::Counter c, uint64_t n = 1) {
  if (on(live_mask(), g_state.idx_meter)) g_state.ctl->counters[c].fetch_add(n, std::memory_order_relaxed);
}

// dlsym(RTLD_NEXT, name), resolved once per symbol by the REAL macro below.
void* real_symbol(const char* name);
// The same for symbols glibc keeps only as compat versions (__xstat, ...): dlvsym.
void* real_versioned_symbol(const char* name);

// True when the redirect interceptor is on (a DB is loaded and the control page enables it).
inline bool redirect_on() { return on(live_mask(), g_state.idx_redirect); }

}  // namespace envrun::icpt

// REAL(open)(path, flags, mode): the next definition of `open` after this library.
#define REAL(fn)                                                                       \
  ([]() {                                                                              \
    static decltype(&::fn) p_ = nullptr;                                               \
    if (__builtin_expect(p_ == nullptr, 0))                                            \
      p_ = reinterpret_cast<decltype(&::fn)>(::envrun::icpt::real_symbol(#fn));        \
    return p_;                                                                         \
  }())
