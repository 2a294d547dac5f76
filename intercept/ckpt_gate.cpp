// The gate's slot table and the checkpoint thread's drain (ckpt_gate.hpp).
#include "intercept/ckpt_gate.hpp"

#include <linux/membarrier.h>
#include <pthread.h>
#include <time.h>

#include "intercept/sys.hpp"
#include "intercept/vfork_guard.hpp"

namespace envrun::icpt::ckpt {

constinit __thread GateSlot* t_gate __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

constexpr uint32_t kSlots = 512;

constinit GateSlot g_slots[kSlots];
constinit GateSlot g_untracked;                   // shared by threads without a slot
constinit std::atomic<uint32_t> g_high{0};        // slots ever claimed: bounds the scans
constinit pthread_key_t g_key = 0;
constinit bool g_key_ok = false;

// Thread exit (the key's destructor): the slot goes back; later hooked calls of this
// thread (other destructors) use the untracked slot.
void release(void* p) {
  auto* s = static_cast<GateSlot*>(p);
  s->depth.store(0, std::memory_order_relaxed);
  s->tid.store(0, std::memory_order_release);
  if (t_gate == s) t_gate = &g_untracked;
}

// Fork child: only the forking thread lives on, with a new tid.
void after_fork_child() {
  GateSlot* own = t_gate;
  uint32_t high = g_high.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < high; ++i) {
    if (&g_slots[i] == own) continue;
    g_slots[i].depth.store(0, std::memory_order_relaxed);
    g_slots[i].tid.store(0, std::memory_order_relaxed);
  }
  if (own != nullptr && own != &g_untracked) own->tid.store(sys::gettid(), std::memory_order_relaxed);
}

// The state letter of a thread of this process ('R', 'S', 'D', ...), 0 when it is gone.
char thread_state(int tid) {
  char path[48] = "/proc/self/task/";
  char digits[12];
  int n = 0;
  for (unsigned v = unsigned(tid); v != 0 || n == 0; v /= 10) digits[n++] = char('0' + v % 10);
  size_t at = 16;
  while (n > 0) path[at++] = digits[--n];
  const char tail[] = "/stat";
  for (char c : tail) path[at++] = c;
  int fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[512];
  long len = sys::read(fd, buf, sizeof buf - 1);
  sys::close(fd);
  if (len <= 0) return 0;
  for (long i = len - 1; i > 0; --i)  // "pid (comm) S ...": the comm may hold ") "
    if (buf[i] == ')' && i + 2 < len) return buf[i + 2];
  return 0;
}

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  sys::raw(SYS_nanosleep, sys::L(&ts), 0);
}

// Every other running thread of the process passes a full memory barrier: its gate
// store is visible, or its next barrier check sees the barrier set before this call.
void fence_all_threads() {
  long r = sys::raw(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  if (r == -EPERM) {  // not registered yet (registration is per process image)
    sys::raw(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
    r = sys::raw(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  }
  if (r < 0) sleep_ms(2);  // no membarrier: store buffers drain in far less
}

bool slot_safe(GateSlot& s, int self) {
  int tid = s.tid.load(std::memory_order_acquire);
  if (tid == 0 || tid == self) return true;
  uint32_t d = s.depth.load(std::memory_order_acquire);
  if ((d & kDepthMask) == 0 || (d & kParked)) return true;
  char st = thread_state(tid);
  if (st == 0) {  // exited without its key destructor (a raw clone): free the slot
    s.tid.compare_exchange_strong(tid, 0);
    return true;
  }
  return st != 'R';  // asleep in the kernel: in the real call, a safe point
}

}  // namespace

GateSlot* gate_claim() {
  if (!records_writable()) return &g_untracked;  // a vfork child runs on its parent's TLS
  int tid = sys::gettid();
  for (uint32_t i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (g_slots[i].tid.load(std::memory_order_relaxed) != 0 ||
        !g_slots[i].tid.compare_exchange_strong(expected, tid, std::memory_order_acq_rel))
      continue;
    uint32_t high = g_high.load(std::memory_order_relaxed);
    while (i + 1 > high && !g_high.compare_exchange_weak(high, i + 1, std::memory_order_relaxed)) {
    }
    GateSlot* s = &g_slots[i];
    t_gate = s;
    if (g_key_ok) pthread_setspecific(g_key, s);
    return s;
  }
  t_gate = &g_untracked;
  return &g_untracked;
}

void gate_parked(bool yes) {
  GateSlot* s = t_gate;
  if (s == nullptr || s == &g_untracked) return;
  uint32_t d = s->depth.load(std::memory_order_relaxed);
  s->depth.store(yes ? d + kParked : d - kParked, std::memory_order_release);
}

int gate_drain(int self, long ms) {
  fence_all_threads();
  long deadline = now_ms() + ms;
  for (;;) {
    int busy = 0;
    uint32_t high = g_high.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < high; ++i)
      if (!slot_safe(g_slots[i], self)) ++busy;
    if (busy == 0 || now_ms() >= deadline) return busy;
    sleep_ms(1);
  }
}

long now_ms() {
  struct timespec ts = {};
  sys::raw(SYS_clock_gettime, CLOCK_MONOTONIC, sys::L(&ts));
  return long(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void gate_init() {
  g_key_ok = pthread_key_create(&g_key, release) == 0;
  pthread_atfork(nullptr, nullptr, after_fork_child);
}

}  // namespace envrun::icpt::ckpt
