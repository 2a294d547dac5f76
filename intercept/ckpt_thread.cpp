// The checkpoint thread (ckpt_thread.hpp) and its side of the handshake (control.h
// kCkptEpoch...; the engine's side is ckpt/inproc.cpp):
//   idle      FUTEX_WAIT on kCkptEpoch until it exceeds the value last seen;
//   request   (the engine set the barrier) wait until the other threads are at safe points
//             (gate_drain, when the barrier interceptor is on), run the save hooks
//             (stdio, meter), name the thread "envrun-ckpt:ack", ack with the epoch's tag;
//   wait      for kCkptRelease >= epoch (resume hooks; the engine lifts the barrier), or for
//             kCkptEpoch < epoch: a new page, the process was restored (restore hooks, ack
//             with kCkptRestoreTag; the engine lifts the barrier), or for the lease to run
//             out (the engine died: lift the barrier ourselves, say so on stderr).
// A restore while idle (kCkptEpoch below the value seen: the dump had no in-process part
// for this process) runs the restore hooks without an ack.
#include "intercept/ckpt_thread.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <climits>

#include "intercept/ckpt_gate.hpp"
#include "intercept/ckpt_hooks.hpp"
#include "intercept/lib_state.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt::ckpt {

constinit __thread bool t_ckpt_thread __attribute__((tls_model("initial-exec"))) = false;

namespace {

constexpr size_t kStack = 64 * 1024;
constexpr long kDrainMs = 2000;  // then the save hooks run anyway (threads still busy)
constinit std::atomic<bool> g_running{false};
constinit std::atomic<bool> g_atfork{false};
constinit std::atomic<bool> g_stop{false};    // stop_thread() asks the idle thread to end
constinit std::atomic<bool> g_ended{false};   // it did
constinit pthread_t g_thread{};

std::atomic<uint64_t>& word(uint32_t i) { return g_state.ctl->barrier[i]; }

// FUTEX_WAIT on the low 32 bits of a page word (shared: not FUTEX_PRIVATE_FLAG).
void wait_word(std::atomic<uint64_t>& w, uint64_t seen, long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  sys::raw(SYS_futex, sys::L(&w), FUTEX_WAIT, long(uint32_t(seen)), ms < 0 ? 0 : sys::L(&ts));
}
void wake_word(std::atomic<uint64_t>& w) { sys::raw(SYS_futex, sys::L(&w), FUTEX_WAKE, INT_MAX); }

void set_name(const char* name) { sys::raw(SYS_prctl, PR_SET_NAME, sys::L(name)); }

// Count this process in the phase with `tag`, unless the engine moved on to another one.
void ack(uint32_t tag) {
  auto& a = word(ictl::kCkptAcks);
  uint64_t v = a.load(std::memory_order_acquire);
  while (uint32_t(v >> 32) == tag)
    if (a.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) {
      wake_word(a);
      return;
    }
}

enum class End { Resumed, Restored, Lapsed };

End await_release(uint64_t epoch) {
  uint64_t lease = word(ictl::kCkptLease).load(std::memory_order_relaxed);
  long deadline = now_ms() + long(lease ? lease : ictl::kCkptDefaultLeaseMs);
  for (;;) {
    if (word(ictl::kCkptEpoch).load(std::memory_order_acquire) < epoch) return End::Restored;
    uint64_t rel = word(ictl::kCkptRelease).load(std::memory_order_acquire);
    if (rel >= epoch) return End::Resumed;
    long left = deadline - now_ms();
    if (left <= 0) return End::Lapsed;
    wait_word(word(ictl::kCkptRelease), rel, left < 100 ? left : 100);
  }
}

// One request (the engine has set the barrier); returns the epoch value to wait beyond
// next. A request seen after the engine released it (this thread was slow, or stopped)
// is over: nothing to do.
uint64_t serve(uint64_t epoch, int self) {
  if (word(ictl::kCkptRelease).load(std::memory_order_acquire) >= epoch) return epoch;
  if (on(live_mask(), g_state.idx_barrier)) (void)gate_drain(self, kDrainMs);
  run_save_hooks();
  set_name("envrun-ckpt:ack");
  ack(uint32_t(epoch));
  End end = await_release(epoch);
  set_name("envrun-ckpt");
  switch (end) {
    case End::Restored:
      run_restore_hooks();
      ack(ictl::kCkptRestoreTag);
      return word(ictl::kCkptEpoch).load(std::memory_order_acquire);
    case End::Resumed: run_resume_hooks(); break;
    case End::Lapsed:
      sys::say("envrun-intercept: checkpoint: no word from the engine within the lease; "
               "the barrier is lifted\n");
      word(ictl::kBarrierFlag).store(0, std::memory_order_release);
      wake_word(word(ictl::kBarrierFlag));
      break;
  }
  return epoch;
}

// `arg`: the request epoch when the thread was made (a request after that is served even
// if it came before the thread first waits).
void* thread_main(void* arg) {
  t_ckpt_thread = true;
  int self = sys::gettid();
  uint64_t seen = uint64_t(reinterpret_cast<uintptr_t>(arg));
  for (;;) {
    if (g_stop.load(std::memory_order_acquire)) break;
    wait_word(word(ictl::kCkptEpoch), seen, -1);
    if (g_stop.load(std::memory_order_acquire)) break;
    uint64_t e = word(ictl::kCkptEpoch).load(std::memory_order_acquire);
    if (e == seen) continue;  // woken for nothing, or a signal (glibc's setxid)
    if (e < seen) {           // a new page: restored while idle
      run_restore_hooks();
      seen = e;
      continue;
    }
    seen = serve(e, self);
  }
  g_ended.store(true, std::memory_order_release);
  return nullptr;
}

bool disabled() {
  const char* v = getenv("ENVRUN_INTERCEPT_CKPT");
  return v != nullptr && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0);
}

// A fork child has no thread but the one that forked: it gets its own checkpoint thread.
void restart_in_child() {
  if (!g_running.load(std::memory_order_relaxed)) return;
  g_running.store(false, std::memory_order_relaxed);
  start_thread();
}

}  // namespace

void start_thread() {
  if (!g_state.ctl_shared || g_state.idx_barrier < 0 || disabled()) return;
  bool expected = false;
  if (!g_running.compare_exchange_strong(expected, true)) return;
  if (!g_atfork.exchange(true)) pthread_atfork(nullptr, nullptr, restart_in_child);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // inherited: no signal is ever delivered to it
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  (void)pthread_attr_setstacksize(&attr, kStack);  // below the minimum: the default stays
  g_stop.store(false, std::memory_order_relaxed);
  g_ended.store(false, std::memory_order_relaxed);
  void* seen = reinterpret_cast<void*>(uintptr_t(word(ictl::kCkptEpoch).load(std::memory_order_acquire)));
  if (pthread_create(&g_thread, &attr, thread_main, seen) == 0)
    pthread_setname_np(g_thread, "envrun-ckpt");  // named before anyone can look for it
  else
    g_running.store(false, std::memory_order_relaxed);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

bool stop_thread() {
  if (!g_running.load(std::memory_order_acquire)) return false;
  g_stop.store(true, std::memory_order_release);
  // The thread checks g_stop before and after each wait: wake until it ended (a wake that
  // falls between its check and its wait is lost; the next one is not). A request it is
  // serving ends first (bounded by the lease).
  long until = now_ms() + long(ictl::kCkptDefaultLeaseMs);
  while (!g_ended.load(std::memory_order_acquire) && now_ms() < until) {
    wake_word(word(ictl::kCkptEpoch));
    struct timespec ts = {0, 1000000};
    sys::raw(SYS_nanosleep, sys::L(&ts), 0);
  }
  if (!g_ended.load(std::memory_order_acquire)) return false;
  pthread_join(g_thread, nullptr);
  g_running.store(false, std::memory_order_release);
  return true;
}

}  // namespace envrun::icpt::ckpt
