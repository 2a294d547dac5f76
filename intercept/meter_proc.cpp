// kProcessesStarted: a process is counted once, by whichever of these sees it first:
//   - the library's constructor, in a process started by exec (the instance's first
//     process, posix_spawn, vfork + exec, system(), popen());
//   - the fork child handler (pthread_atfork), in a fork child that does not exec.
// A counted process that execs would be counted again by the new program's constructor;
// so before the exec it leaves (pid, start time) in the control page's `exec_pids`, and a
// constructor that finds its own entry there removes it instead of counting. The start
// time (field 22 of /proc/self/stat) tells a reused pid from the process that left the
// entry. When all slots are taken by live processes (exec of a static binary that never
// loads the library keeps its slot until it exits), the exec goes without an entry and
// the new program counts the process a second time.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>

#include "intercept/lib_state.hpp"
#include "intercept/meter.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt::meter {

namespace {

constinit std::atomic<int> g_counted_pid{0};  // this process was counted (its pid), else 0
constinit std::atomic<uint64_t> g_start_time{0};  // of g_counted_pid, once asked
__thread int t_exec_slot __attribute__((tls_model("initial-exec"))) = -1;

// Field 22 of /proc/<pid>/stat (pid 0: self); 0 when it cannot be read.
uint64_t start_time_of(int pid) {
  char path[40] = "/proc/self/stat";
  if (pid != 0) {
    char digits[16];
    int n = 0;
    for (unsigned v = unsigned(pid); v != 0 || n == 0; v /= 10) digits[n++] = char('0' + v % 10);
    int k = 6;  // after "/proc/"
    while (n > 0) path[k++] = digits[--n];
    for (const char* s = "/stat"; *s; ++s) path[k++] = *s;
    path[k] = '\0';
  }
  int fd = sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  long n = sys::raw(SYS_read, fd, sys::L(buf), sizeof buf - 1);
  sys::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and ')': fields start after the last ')'.
  const char* p = nullptr;
  for (long i = 0; i < n; ++i)
    if (buf[i] == ')') p = buf + i;
  if (p == nullptr) return 0;
  int field = 2;
  for (++p; *p && field < 22; ++p)
    if (*p == ' ') ++field;
  uint64_t v = 0;
  while (*p >= '0' && *p <= '9') v = v * 10 + uint64_t(*p++ - '0');
  return v;
}

bool meter_on() { return on(live_mask(), g_state.idx_meter); }

void count_self(int pid) {
  g_state.ctl->counters[ictl::kProcessesStarted].fetch_add(1, std::memory_order_relaxed);
  g_counted_pid.store(pid, std::memory_order_relaxed);
  g_start_time.store(0, std::memory_order_relaxed);
}

// A slot that no longer belongs to a process inside its exec: the process is gone, or its
// pid is someone else's now.
bool stale(ictl::ExecSlot& s, uint64_t pid) {
  uint64_t t = s.start_time.load(std::memory_order_acquire);
  return t != 0 && start_time_of(int(pid)) != t;
}

}  // namespace

void process_loaded() {
  int pid = sys::getpid();
  for (auto& s : g_state.ctl->exec_pids) {
    uint64_t p = s.pid.load(std::memory_order_acquire);
    if (p != uint64_t(pid)) continue;
    uint64_t t = s.start_time.load(std::memory_order_acquire);
    if (t == 0 || t != start_time_of(0)) continue;
    if (s.pid.compare_exchange_strong(p, 0, std::memory_order_acq_rel)) {
      g_counted_pid.store(pid, std::memory_order_relaxed);  // counted before the exec
      return;
    }
  }
  if (meter_on()) count_self(pid);
}

void process_forked() {
  t_exec_slot = -1;
  g_counted_pid.store(0, std::memory_order_relaxed);
  if (meter_on()) count_self(sys::getpid());
}

void process_restored() {
  if (meter_on()) count_self(sys::getpid());
}

void exec_begin() {
  flush_process();
  t_exec_slot = -1;
  int pid = sys::getpid();
  if (g_counted_pid.load(std::memory_order_relaxed) != pid) return;  // a vfork child, or not counted
  uint64_t t = g_start_time.load(std::memory_order_relaxed);
  if (t == 0) {
    t = start_time_of(0);
    if (t == 0) return;
    g_start_time.store(t, std::memory_order_relaxed);
  }
  auto* slots = g_state.ctl->exec_pids;
  for (int pass = 0; pass < 2; ++pass)
    for (uint32_t i = 0; i < ictl::kExecSlots; ++i) {
      uint64_t p = slots[i].pid.load(std::memory_order_acquire);
      if (p != 0 && (pass == 0 || !stale(slots[i], p))) continue;
      // Claim: pid 0 -> ~0 (being written), then the start time, then the pid.
      if (!slots[i].pid.compare_exchange_strong(p, ~uint64_t(0), std::memory_order_acq_rel)) continue;
      slots[i].start_time.store(t, std::memory_order_release);
      slots[i].pid.store(uint64_t(pid), std::memory_order_release);
      t_exec_slot = int(i);
      return;
    }
}

void exec_end() {
  int i = t_exec_slot;
  if (i < 0) return;
  t_exec_slot = -1;
  g_state.ctl->exec_pids[i].pid.store(0, std::memory_order_release);
}

}  // namespace envrun::icpt::meter
