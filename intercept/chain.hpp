// The interceptor chain of a hooked call, as nested wrappers (intercept/README.md, "The
// hierarchy"). A hook builds a `Call` record on its stack and runs the active stages of
// its call class in the DB's order: each stage's enter step may rewrite the record or
// fail the call (then no later stage and not the real function run); then the real
// function; then the leave step of every stage that entered, in reverse order.
//   redirect  enter: the file rules (hook-specific: the hook passes it in)
//   net       enter: address mapping; leave: reverse mapping (hook-specific)
//   meter     leave: counts the call (kOpens, kOpenFailures, kRedirected, kDenied, ...)
//   barrier   enter: waits while a checkpoint is in progress (ControlPage::barrier[0])
// The active stages for every live mask are precomputed at init (the DB installs at most
// one interceptor of each kind, so 16 masks per class): a call costs one load of the
// mask and one table look-up. Internal to libenvrun-intercept.so; no allocation.
#pragma once
#include <sys/socket.h>

#include <cstdint>

#include "intercept/ckpt_gate.hpp"
#include "intercept/lib_state.hpp"
#include "intercept/resolve.hpp"

namespace envrun::icpt {

// Which hooks a call belongs to: decides which interceptors take part.
//   Path: the file family (net stage skipped); Net: socket addresses (all four);
//   Exec: exec/spawn/dlopen (net stage skipped).
enum class CallClass : uint8_t { Path = 0, Net, Exec };
inline constexpr int kCallClasses = 3;
inline constexpr int kPlanMasks = 16;  // interceptors 0..3 of the DB

// What the meter's leave step counts for a call.
enum class MeterAs : uint8_t {
  Rules,   // kRedirected / kDenied only (stat, mkdir, ...)
  Open,    // + kOpens / kOpenFailures
  Exec,    // + kExecs (counted on enter: a successful exec does not return; undone on
           //   failure); batches flushed and the process marked as counted before the exec
  Bind,    // + kBinds (+ kPortsMapped)
  Connect, // + kConnects (+ kPortsMapped), the peer address (kDistinctPeers)
  BytesOut,// + kBytesWritten, kNetBytesSent (the result, when > 0), the turn (kTransactions)
  BytesIn, // + kBytesRead, kNetBytesReceived (the result, when > 0)
};

struct Call {
  CallClass cls = CallClass::Path;
  MeterAs meter = MeterAs::Rules;
  Op op = Op::Stat;
  int dirfd = AT_FDCWD;
  const char* path = nullptr;
  int flags = 0;            // open flags, or AT_* flags
  unsigned mode = 0;        // creation mode
  long result = 0;          // the real function's (or the failing stage's) result
  int err = 0;              // errno to leave to the caller when failed
  bool failed = false;      // the call failed (a stage refused it, or the real call failed)
  bool denied = false;      // a rule refused it (hide, readonly)
  bool redirected = false;  // redirect rewrote it
  bool mapped = false;      // net rewrote its address
  int fd = -1;              // Net: the socket (meter: bytes, turns)
  const sockaddr* addr = nullptr;  // Net: the address the kernel got (meter: connect's peer)
  socklen_t addr_len = 0;
  Call* outer = nullptr;    // the call this one runs inside of (same thread), if any
  // Hook-private state for the redirect step and the real function.
  Resolved* res = nullptr;
  void* ext = nullptr;
};

// The active stages of one call class for one live mask, in chain order.
struct Plan {
  uint8_t n = 0;
  Kind stage[4] = {};
  bool meter = false, redirect = false, barrier = false;
};

extern Plan g_plans[kCallClasses][kPlanMasks];

// Fill g_plans from g_state.chain (after load_chain).
void build_plans();

// The plan of a hooked call, held for the rest of the hook (`const Plan& p = plan_for(...)`
// extends the temporary's life to p's scope; passed as an argument, to the end of the
// statement): while it lives the thread is inside the checkpoint gate (ckpt_gate.hpp), so
// a checkpoint waits for the call to finish, park at the barrier or block in the kernel.
// wait_barrier: park here while a checkpoint is in progress (the I/O family).
struct PlanScope : Plan {
  ckpt::GateSlot* gate;
  PlanScope(CallClass c, uint64_t mask, bool wait_barrier = false);
  ~PlanScope() { ckpt::gate_leave(gate); }
  PlanScope(const PlanScope&) = delete;
  PlanScope& operator=(const PlanScope&) = delete;
};

inline PlanScope plan_for(CallClass c, uint64_t mask) { return PlanScope(c, mask); }

// The call being run through a chain on this thread (resolve() marks it denied /
// redirected instead of counting itself); null outside a chain.
extern __thread Call* t_call __attribute__((tls_model("initial-exec")));

// resolve() reports what it did: into the running call, or (hooks that build no Call)
// straight into the meter counters as before.
inline void note_denied() {
  if (Call* c = t_call) c->denied = true;
  else count(ictl::kDenied);
}
inline void note_redirected() {
  if (Call* c = t_call) c->redirected = true;
  else count(ictl::kRedirected);
}

// The checkpoint barrier: true when no checkpoint is in progress (one relaxed load).
inline bool barrier_clear() { return g_state.ctl->barrier[ictl::kBarrierFlag].load(std::memory_order_relaxed) == 0; }
// Wait (futex on the shared word) while a checkpoint is in progress; the checkpoint
// thread itself never waits.
void barrier_wait();

inline PlanScope::PlanScope(CallClass c, uint64_t mask, bool wait_barrier)
    : Plan(g_plans[int(c)][mask & (kPlanMasks - 1)]), gate(ckpt::gate_slot()) {
  ckpt::gate_enter(gate);
  if (wait_barrier && barrier && !barrier_clear()) barrier_wait();
}

// The meter's steps (counters per Call::meter).
void meter_enter(Call& c);
void meter_leave(Call& c);

// The fast path's count, for a call no interceptor rewrote: a plain kOpens/kOpenFailures.
inline void meter_plain(const Plan& p, MeterAs as, bool ok) {
  if (p.meter && as == MeterAs::Open)
    g_state.ctl->counters[ok ? ictl::kOpens : ictl::kOpenFailures].fetch_add(1, std::memory_order_relaxed);
}

// A hook's interceptor-specific steps. Defaults: nothing to do.
struct NoSteps {
  bool redirect(Call&) { return true; }
  bool net(Call&) { return true; }
  void net_leave(Call&) {}
};

namespace chain_detail {
template <class H>
inline bool enter(Kind k, Call& c, H& h) {
  switch (k) {
    case Kind::Redirect: return h.redirect(c);
    case Kind::Net: return h.net(c);
    case Kind::Barrier: barrier_wait(); return true;
    case Kind::Meter: meter_enter(c); return true;
    default: return true;
  }
}
template <class H>
inline void leave(Kind k, Call& c, H& h) {
  if (k == Kind::Meter) meter_leave(c);
  else if (k == Kind::Net) h.net_leave(c);
}
}  // namespace chain_detail

// Run the chain: h.redirect/h.net may fail the call (set c.failed, c.err, c.result and
// return false); h.real(c) calls the real function with the (rewritten) record and sets
// c.result, c.failed and c.err.
template <class H>
void run_chain(Call& c, const Plan& p, H& h) {
  c.outer = t_call;
  t_call = &c;
  int entered = 0;
  for (; entered < p.n; ++entered)
    if (!chain_detail::enter(p.stage[entered], c, h)) break;
  if (entered == p.n) h.real(c);
  t_call = c.outer;
  while (entered-- > 0) chain_detail::leave(p.stage[entered], c, h);
}

// Fail a call from an enter step.
inline bool refuse(Call& c, int neg_errno, long result = -1) {
  c.failed = true;
  c.err = -neg_errno;
  c.result = result;
  return false;
}

}  // namespace envrun::icpt
