// The chain's shared parts: the per-mask plans, the meter's steps, the barrier's wait
// (the design is in chain.hpp).
#include "intercept/chain.hpp"

#include <linux/futex.h>
#include <time.h>

#include "intercept/meter.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

constinit Plan g_plans[kCallClasses][kPlanMasks] = {};
constinit __thread Call* t_call __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

bool takes_part(Kind k, CallClass c) {
  switch (k) {
    case Kind::Meter:
    case Kind::Redirect:
    case Kind::Barrier: return true;
    case Kind::Net: return c == CallClass::Net;
    default: return false;
  }
}

void add(ictl::Counter c, int64_t n = 1) {
  g_state.ctl->counters[c].fetch_add(uint64_t(n), std::memory_order_relaxed);
}

}  // namespace

void build_plans() {
  uint32_t len = g_state.chain_len < 4 ? g_state.chain_len : 4;
  for (int cls = 0; cls < kCallClasses; ++cls)
    for (unsigned mask = 0; mask < kPlanMasks; ++mask) {
      Plan& p = g_plans[cls][mask];
      p = Plan{};
      for (uint32_t i = 0; i < len; ++i) {
        Kind k = g_state.chain[i];
        if (!((mask >> i) & 1u) || !takes_part(k, CallClass(cls))) continue;
        p.stage[p.n++] = k;
        p.meter |= k == Kind::Meter;
        p.redirect |= k == Kind::Redirect;
        p.barrier |= k == Kind::Barrier;
      }
    }
}

void barrier_wait() {
  if (ckpt::t_ckpt_thread) return;  // it holds the barrier: its own hooked calls go through
  auto& word = g_state.ctl->barrier[ictl::kBarrierFlag];
  ckpt::gate_parked(true);
  for (;;) {
    uint64_t v = word.load(std::memory_order_acquire);
    if (v == 0) break;
    struct timespec ts = {0, 200 * 1000 * 1000};
    // the low 32 bits of the word (little-endian); a raw call: errno stays the caller's
    sys::raw(SYS_futex, sys::L(&word), FUTEX_WAIT, long(uint32_t(v)), sys::L(&ts));
  }
  ckpt::gate_parked(false);
}

void meter_enter(Call& c) {
  if (c.meter != MeterAs::Exec) return;
  add(ictl::kExecs);
  meter::exec_begin();
}

void meter_leave(Call& c) {
  if (c.denied) add(ictl::kDenied);
  if (c.redirected) add(ictl::kRedirected);
  switch (c.meter) {
    case MeterAs::Rules: break;
    case MeterAs::Open: add(c.failed ? ictl::kOpenFailures : ictl::kOpens); break;
    case MeterAs::Exec:
      meter::exec_end();  // a failed exec, or a spawn that returned
      if (c.failed) add(ictl::kExecs, -1);
      break;
    case MeterAs::Bind:
    case MeterAs::Connect:
      if (c.failed) break;
      add(c.meter == MeterAs::Bind ? ictl::kBinds : ictl::kConnects);
      if (c.mapped) add(ictl::kPortsMapped);
      if (c.meter == MeterAs::Connect) meter::note_peer(c.addr, c.addr_len);
      break;
    case MeterAs::BytesOut:
      if (!c.failed && c.result > 0) meter::net_out(c.fd, uint64_t(c.result));
      break;
    case MeterAs::BytesIn:
      if (!c.failed && c.result > 0) meter::net_in(c.fd, uint64_t(c.result));
      break;
  }
}

}  // namespace envrun::icpt
