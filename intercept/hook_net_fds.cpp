// Per-fd state of the net interceptor: which fds are accepted connections the meter counts
// (a fixed bitmap, atomics only), and the names of AF_UNIX sockets bound through the
// /proc/self/fd trick (a small fixed table). note_fd_closed() forgets both.
//
// Connections are counted once per instance: a forked child forgets the parent's tracked
// fds (the parent's close ends the connection for the meter), and a process that exits or
// execs with tracked close-on-exec fds releases them first. A vfork child (or a raw clone
// sharing our memory) is not the owner of the bitmap: its exec or exit releases nothing.
#include <fcntl.h>
#include <pthread.h>
#include <string.h>

#include <atomic>
#include <cstdint>

#include "intercept/fd_events.hpp"
#include "intercept/hook_net.hpp"
#include "intercept/lib_state.hpp"
#include "intercept/meter.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

namespace {

constexpr int kMaxTrackedFd = 1 << 20;  // 128 KiB of bss, touched only where fds live
constexpr int kWords = kMaxTrackedFd / 64;
std::atomic<uint64_t> g_conn_bits[kWords];
std::atomic<int> g_conn_high{-1};       // highest fd ever tracked: bounds the scans
std::atomic<int> g_owner_pid{0};        // the process the bitmap belongs to (0: not known yet)

constexpr int kUnixSlots = 64;
struct UnixName {
  std::atomic<int> fd_plus1{0};          // 0: free
  socklen_t len = 0;
  sockaddr_un sa = {};
};
UnixName g_unix[kUnixSlots];
std::atomic<int> g_unix_used{0};        // slots ever claimed: 0 keeps close() to one load

std::atomic<uint64_t>& open_counter() { return g_state.ctl->counters[ictl::kConnectionsOpen]; }

void raise_peak(uint64_t open) {
  auto& peak = g_state.ctl->counters[ictl::kConnectionsPeak];
  uint64_t p = peak.load(std::memory_order_relaxed);
  while (open > p && !peak.compare_exchange_weak(p, open, std::memory_order_relaxed)) {
  }
}

// False in a vfork child (or a clone sharing our memory): the bitmap and the name table
// are the parent's, and so are the fds the child closes before it execs. One system call:
// asked only when there is something to forget.
bool is_owner() {
  int owner = g_owner_pid.load(std::memory_order_relaxed);
  return owner == 0 || owner == sys::getpid();
}

// Clear fd's bit; true when it was set (the connection was counted).
bool untrack(int fd) {
  if (fd < 0 || fd >= kMaxTrackedFd) return false;
  uint64_t bit = uint64_t(1) << (fd & 63);
  auto& w = g_conn_bits[fd >> 6];
  if (!(w.load(std::memory_order_relaxed) & bit) || !is_owner()) return false;
  return (w.fetch_and(~bit, std::memory_order_relaxed) & bit) != 0;
}

void forget_unix_name(int fd) {
  if (g_unix_used.load(std::memory_order_relaxed) == 0) return;
  bool any = false;
  for (auto& s : g_unix) any |= s.fd_plus1.load(std::memory_order_relaxed) == fd + 1;
  if (!any || !is_owner()) return;
  for (auto& s : g_unix) {
    int want = fd + 1;
    if (s.fd_plus1.load(std::memory_order_relaxed) == want)
      s.fd_plus1.compare_exchange_strong(want, 0, std::memory_order_acq_rel);
  }
}

// Fork child: the parent keeps counting its connections; the child's copies are not counted.
void forget_all_in_child() {
  g_owner_pid.store(sys::getpid(), std::memory_order_relaxed);
  int high = g_conn_high.load(std::memory_order_relaxed);
  for (int i = 0; high >= 0 && i <= high / 64; ++i) g_conn_bits[i].store(0, std::memory_order_relaxed);
}

__attribute__((constructor)) void register_fork_handler() {
  g_owner_pid.store(sys::getpid(), std::memory_order_relaxed);
  pthread_atfork(nullptr, nullptr, forget_all_in_child);
}

// Normal exit: the kernel closes the fds without close(); end their connections.
__attribute__((destructor)) void release_all_at_exit() { net::release_connections_at_exit(); }

}  // namespace

void note_fd_closed(int fd) {
  meter::fd_closed(fd);
  if (untrack(fd)) open_counter().fetch_sub(1, std::memory_order_relaxed);
  forget_unix_name(fd);
}

void note_fd_range_closed(unsigned first, unsigned last) {
  meter::fd_range_closed(first, last);
  int high = g_conn_high.load(std::memory_order_relaxed);
  if (high >= 0 && first <= unsigned(high)) {
    unsigned end = last < unsigned(high) ? last : unsigned(high);
    for (unsigned fd = first; fd <= end; ++fd)
      if (untrack(int(fd))) open_counter().fetch_sub(1, std::memory_order_relaxed);
  }
  if (g_unix_used.load(std::memory_order_relaxed) == 0 || !is_owner()) return;
  for (auto& s : g_unix) {
    int v = s.fd_plus1.load(std::memory_order_relaxed);
    if (v > 0 && unsigned(v - 1) >= first && unsigned(v - 1) <= last)
      s.fd_plus1.compare_exchange_strong(v, 0, std::memory_order_acq_rel);
  }
}

namespace net {

void note_accepted(int fd, const sockaddr* addr, socklen_t cap, const socklen_t* len) {
  if (!on(live_mask(), g_state.idx_meter)) return;
  g_state.ctl->counters[ictl::kAccepts].fetch_add(1, std::memory_order_relaxed);
  meter::fd_accepted(fd);
  if (addr != nullptr && len != nullptr && *len <= cap) meter::note_peer(addr, *len);
  else meter::note_peer_of(fd);
  if (fd < 0 || fd >= kMaxTrackedFd) return;  // counted as accepted, not as open
  uint64_t bit = uint64_t(1) << (fd & 63);
  if (g_conn_bits[fd >> 6].fetch_or(bit, std::memory_order_relaxed) & bit) return;  // already counted
  int high = g_conn_high.load(std::memory_order_relaxed);
  while (fd > high && !g_conn_high.compare_exchange_weak(high, fd, std::memory_order_relaxed)) {
  }
  raise_peak(open_counter().fetch_add(1, std::memory_order_relaxed) + 1);
}

void release_connections_at_exit() {
  if (!is_owner()) return;  // a vfork child: the connections are the parent's
  int high = g_conn_high.load(std::memory_order_relaxed);
  for (int fd = 0; fd <= high; ++fd)
    if (untrack(fd)) open_counter().fetch_sub(1, std::memory_order_relaxed);
}

int release_cloexec_connections(int* saved, int cap) {
  if (!is_owner()) return 0;  // a vfork child: the fds stay open in the parent
  int n = 0, high = g_conn_high.load(std::memory_order_relaxed);
  for (int fd = 0; fd <= high && n < cap; ++fd) {
    if (!(g_conn_bits[fd >> 6].load(std::memory_order_relaxed) & (uint64_t(1) << (fd & 63)))) continue;
    int fl = sys::fcntl(fd, F_GETFD);
    if (fl < 0 || !(fl & FD_CLOEXEC) || !untrack(fd)) continue;
    open_counter().fetch_sub(1, std::memory_order_relaxed);
    saved[n++] = fd;
  }
  return n;
}

void restore_connections(const int* saved, int n) {
  for (int i = 0; i < n; ++i) {
    int fd = saved[i];
    uint64_t bit = uint64_t(1) << (fd & 63);
    if (g_conn_bits[fd >> 6].fetch_or(bit, std::memory_order_relaxed) & bit) continue;
    raise_peak(open_counter().fetch_add(1, std::memory_order_relaxed) + 1);
  }
}

void remember_unix_name(int fd, const sockaddr_un& sa, socklen_t len) {
  forget_unix_name(fd);
  for (auto& s : g_unix) {
    int expected = 0;
    if (!s.fd_plus1.compare_exchange_strong(expected, -1, std::memory_order_acq_rel)) continue;
    s.len = len > sizeof s.sa ? socklen_t(sizeof s.sa) : len;
    memcpy(&s.sa, &sa, s.len);
    s.fd_plus1.store(fd + 1, std::memory_order_release);
    g_unix_used.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Table full: getsockname will report the /proc/self/fd name.
}

socklen_t remembered_unix_name(int fd, sockaddr_un& out) {
  if (g_unix_used.load(std::memory_order_relaxed) == 0) return 0;
  for (auto& s : g_unix) {
    if (s.fd_plus1.load(std::memory_order_acquire) != fd + 1) continue;
    memcpy(&out, &s.sa, s.len);
    return s.len;
  }
  return 0;
}

}  // namespace net
}  // namespace envrun::icpt
