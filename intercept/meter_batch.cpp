// Per-thread batches of the meter's hot counters (bytes, network bytes, transactions):
// a shared atomic add on every read/write costs about 1% of a 1-byte pipe round trip
// (bench/billing/meter), and much more when threads of several processes hit the same
// cache line; so each thread adds into its own slot with plain stores, and the slot's
// growth is moved to the control page every kFlushEvery calls and at the flush points:
// close() and accept() (a server between two connections), thread exit, process exit
// (exit, _exit, _Exit), exec and fork.
//
// A slot holds cumulative totals, written only by the thread that owns it, and how much of
// each total was already moved (`flushed`). Anyone may flush any slot: it reads a total,
// advances `flushed` to it with a CAS, and the winner of the CAS adds the difference to the
// control page. So the thread that exits or execs moves every thread's batch, and nothing
// is counted twice. A fork child takes the slots as they are and marks everything in them
// as moved (those counts are the parent's, which moves them itself).
//
// What may be lost: a process killed by a signal (or exit_group through syscall()) loses
// what its threads had not moved, at most kFlushEvery - 1 calls' counts per thread; counts
// a thread makes while another thread exits or execs the process are lost with it, as
// they would be without batching. More than kSlots threads at once: the others add to the
// control page directly.
#include <pthread.h>
#include <unistd.h>

#include <atomic>

#include "intercept/lib_state.hpp"
#include "intercept/meter.hpp"

namespace envrun::icpt::meter {

using detail::Slot;

constinit __thread Slot* detail::t_slot __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

constexpr uint32_t kSlots = 256;
constexpr ictl::Counter kHotCounter[kHotCount] = {ictl::kBytesRead, ictl::kBytesWritten, ictl::kNetBytesReceived,
                                                  ictl::kNetBytesSent, ictl::kTransactions};

constinit Slot g_slots[kSlots];
constinit std::atomic<uint32_t> g_slots_high{0};  // slots ever claimed: bounds the scans
constinit pthread_key_t g_key = 0;
constinit bool g_key_ok = false;
// The thread found no free slot, or has ended (its key destructor ran): it adds directly.
constinit __thread bool t_direct __attribute__((tls_model("initial-exec"))) = false;

void flush_slot(Slot& s) {
  ictl::ControlPage* page = g_state.ctl;
  for (int h = 0; h < kHotCount; ++h) {
    uint64_t t = s.total[h].load(std::memory_order_relaxed);
    uint64_t f = s.flushed[h].load(std::memory_order_relaxed);
    while (t > f) {
      if (s.flushed[h].compare_exchange_weak(f, t, std::memory_order_relaxed)) {
        page->counters[kHotCounter[h]].fetch_add(t - f, std::memory_order_relaxed);
        break;
      }
    }
  }
}

// Thread exit (the key's destructor): move the batch, free the slot.
void release(void* p) {
  auto* s = static_cast<Slot*>(p);
  flush_slot(*s);
  s->calls = 0;
  s->used.store(0, std::memory_order_release);
  if (detail::t_slot == s) {  // counts made by later destructors of this thread: direct
    detail::t_slot = nullptr;
    t_direct = true;
  }
}

Slot* claim() {
  for (uint32_t i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (g_slots[i].used.load(std::memory_order_relaxed) != 0 ||
        !g_slots[i].used.compare_exchange_strong(expected, 1, std::memory_order_acq_rel))
      continue;
    uint32_t high = g_slots_high.load(std::memory_order_relaxed);
    while (i + 1 > high && !g_slots_high.compare_exchange_weak(high, i + 1, std::memory_order_relaxed)) {
    }
    Slot* s = &g_slots[i];
    s->calls = 0;
    if (g_key_ok) pthread_setspecific(g_key, s);
    return s;
  }
  t_direct = true;
  return nullptr;
}

// Fork child: only the forking thread lives on; what the slots hold is the parent's.
void after_fork_child() {
  uint32_t high = g_slots_high.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < high; ++i) {
    Slot& s = g_slots[i];
    for (int h = 0; h < kHotCount; ++h) s.flushed[h].store(s.total[h].load(std::memory_order_relaxed), std::memory_order_relaxed);
    s.calls = 0;
    if (&s != detail::t_slot) s.used.store(0, std::memory_order_relaxed);
  }
  process_forked();
}

__attribute__((destructor)) void flush_at_exit() { flush_process(); }

}  // namespace

void detail::flush_owned(Slot& s) {
  s.calls = 0;
  flush_slot(s);
}

void add_hot(Hot h, uint64_t n) {
  Slot* s = detail::t_slot;
  if (__builtin_expect(s == nullptr, 0)) {
    if (!t_direct) detail::t_slot = s = claim();
    if (s == nullptr) {
      g_state.ctl->counters[kHotCounter[h]].fetch_add(n, std::memory_order_relaxed);
      return;
    }
  }
  detail::bump(*s, h, n);
}

void flush_thread() {
  Slot* s = detail::t_slot;
  if (s != nullptr && s->calls != 0) detail::flush_owned(*s);
}

void flush_process() {
  uint32_t high = g_slots_high.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < high; ++i)
    if (g_slots[i].used.load(std::memory_order_acquire) != 0) flush_slot(g_slots[i]);
  if (Slot* s = detail::t_slot) s->calls = 0;
}

void batch_init() {
  g_key_ok = pthread_key_create(&g_key, release) == 0;
  pthread_atfork(flush_process, nullptr, after_fork_child);
}

}  // namespace envrun::icpt::meter
