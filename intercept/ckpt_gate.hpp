// The checkpoint gate: which threads are inside a hooked call that the barrier can hold.
// Every hook that looks at the barrier fetches its plan with plan_for() (chain.hpp), whose
// PlanScope enters the gate for the rest of the hook: one plain add to a per-thread word
// (no atomic read-modify-write, no shared cache line), and a plain store when it leaves.
// The checkpoint thread (ckpt_thread.cpp) sets the barrier, then issues
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): every thread of the process has then either
// made its gate store visible, or will see the barrier when it checks it (the asymmetric
// Dekker of userspace RCU: the hot path needs no fence). It then waits until each thread's
// word is 0, or the thread is parked at the barrier (kParked), or it sleeps in the kernel
// (blocked in the real call: a safe point). Internal to libenvrun-intercept.so.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <cstdint>

namespace envrun::icpt::ckpt {

// One per thread, on its own cache line; the table lives in ckpt_gate.cpp.
struct alignas(64) GateSlot {
  std::atomic<uint32_t> depth;  // hooked calls in progress (+ kParked while at the barrier)
  std::atomic<int32_t> tid;     // the owner; 0: free
};
inline constexpr uint32_t kParked = 1u << 24;
inline constexpr uint32_t kDepthMask = kParked - 1;

// The calling thread's slot: claimed by its first hooked call, given back at its exit.
// Threads beyond the table's size (and a thread whose exit handler ran) share a slot that
// nobody waits for: the barrier still holds their calls.
extern __thread GateSlot* t_gate __attribute__((tls_model("initial-exec")));
GateSlot* gate_claim();

inline GateSlot* gate_slot() {
  GateSlot* s = t_gate;
  if (__builtin_expect(s == nullptr, 0)) s = gate_claim();
  return s;
}

// Owner-only updates, one instruction each where we can (no lock prefix: no other writer;
// a signal handler of the same thread that makes hooked calls cannot fall between a load
// and a store). The "memory" clobber keeps the barrier's load after the enter.
inline void gate_add(GateSlot* s, int32_t n) {
#if defined(__x86_64__)
  __asm__ volatile("addl %1, %0" : "+m"(*reinterpret_cast<uint32_t*>(&s->depth)) : "ir"(n) : "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
  s->depth.store(s->depth.load(std::memory_order_relaxed) + uint32_t(n), std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}
inline void gate_enter(GateSlot* s) { gate_add(s, 1); }
inline void gate_leave(GateSlot* s) { gate_add(s, -1); }

// Around a wait at the barrier (chain.cpp barrier_wait): the thread is at a safe point.
void gate_parked(bool yes);

// True on the checkpoint thread: the barrier it holds does not hold its own hooked calls.
extern __thread bool t_ckpt_thread __attribute__((tls_model("initial-exec")));

// The checkpoint thread: wait until every other thread of the process is at a safe point,
// for at most `ms` milliseconds. Returns how many threads were still busy (0: all safe).
int gate_drain(int self_tid, long ms);

// Set up the thread-exit release and the fork-child reset (once, from the library's init).
void gate_init();

// CLOCK_MONOTONIC in milliseconds (a raw call).
long now_ms();

}  // namespace envrun::icpt::ckpt
