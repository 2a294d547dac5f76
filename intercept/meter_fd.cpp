// What the meter knows per fd: its kind (asked once with fstat, cached until the fd is
// closed) and, for accepted connections, whether it was read since its last write (the
// transaction turn). One byte per fd in a fixed array (1 MiB of bss, touched only where
// fds live); fds above kMaxFd are asked every time and have no turn state. The common
// case (a file, pipe or device already known) is inline in meter.hpp; the rest is here.
//
// The state is per process and inherited by fork children (a pre-forking server's child
// counts the turns of the connection its parent accepted). A vfork child shares it with
// its parent: the fds it changes before exec are not forgotten (vfork_guard.hpp).
#include <sys/stat.h>

#include <atomic>

#include "intercept/meter.hpp"
#include "intercept/sys.hpp"
#include "intercept/vfork_guard.hpp"

namespace envrun::icpt::meter {

using namespace detail;

constinit std::atomic<uint8_t> detail::g_fd[kMaxFd];

namespace {

constinit std::atomic<int> g_high{-1};  // highest fd ever given a state: bounds the range scans

void set_state(int fd, uint8_t s) {
  g_fd[fd].store(s, std::memory_order_relaxed);
  int high = g_high.load(std::memory_order_relaxed);
  while (fd > high && !g_high.compare_exchange_weak(high, fd, std::memory_order_relaxed)) {
  }
}

// Files, pipes and devices count as I/O; sockets as I/O and network; anonymous inodes
// (eventfd, timerfd, signalfd, epoll, inotify, pidfd: no file type) and directories do not.
uint8_t classify(int fd) {
  struct stat st;
  if (sys::fstat(fd, &st) < 0) return kIgnored;
  switch (st.st_mode & S_IFMT) {
    case S_IFSOCK: return kSocket;
    case S_IFREG:
    case S_IFIFO:
    case S_IFCHR:
    case S_IFBLK: return kCounted;
    default: return kIgnored;
  }
}

// The fd's state byte, its kind filled in.
uint8_t state_of(int fd) {
  if (fd < 0) return kIgnored;
  if (fd >= kMaxFd) return classify(fd);
  uint8_t s = g_fd[fd].load(std::memory_order_relaxed);
  if (__builtin_expect((s & kKindMask) != kUnknown, 1)) return s;
  s |= classify(fd);
  set_state(fd, s);
  return s;
}

void mark_socket(int fd) {
  uint8_t s = g_fd[fd].load(std::memory_order_relaxed);
  if ((s & kKindMask) == kUnknown) set_state(fd, s | kSocket);
}

void turn_in(int fd, uint8_t s) {
  if ((s & (kAccepted | kReadSince)) == kAccepted) g_fd[fd].fetch_or(kReadSince, std::memory_order_relaxed);
}

void turn_out(int fd, uint8_t s) {
  if ((s & (kAccepted | kReadSince)) != (kAccepted | kReadSince)) return;
  if (g_fd[fd].fetch_and(uint8_t(~kReadSince), std::memory_order_relaxed) & kReadSince) add_hot(kHotTurns, 1);
}

}  // namespace

void detail::io_in_slow(int fd, uint64_t n) {
  uint8_t s = state_of(fd);
  uint8_t kind = s & kKindMask;
  if (kind == kIgnored) return;
  add_hot(kHotRead, n);
  if (kind != kSocket) return;
  add_hot(kHotNetIn, n);
  turn_in(fd, s);
}

void detail::io_out_slow(int fd, uint64_t n) {
  uint8_t s = state_of(fd);
  uint8_t kind = s & kKindMask;
  if (kind == kIgnored) return;
  add_hot(kHotWritten, n);
  if (kind != kSocket) return;
  add_hot(kHotNetOut, n);
  turn_out(fd, s);
}

void net_in(int fd, uint64_t n) {
  add_hot(kHotRead, n);
  add_hot(kHotNetIn, n);
  if (fd < 0 || fd >= kMaxFd) return;
  mark_socket(fd);
  turn_in(fd, g_fd[fd].load(std::memory_order_relaxed));
}

void net_out(int fd, uint64_t n) {
  add_hot(kHotWritten, n);
  add_hot(kHotNetOut, n);
  if (fd < 0 || fd >= kMaxFd) return;
  mark_socket(fd);
  turn_out(fd, g_fd[fd].load(std::memory_order_relaxed));
}

void fd_accepted(int fd) {
  if (fd >= 0 && fd < kMaxFd) set_state(fd, kSocket | kAccepted);
}

void fd_new_socket(int fd) {
  if (fd >= 0 && fd < kMaxFd && records_writable()) set_state(fd, kSocket);
}

void fd_closed(int fd) {
  if (fd < 0 || fd >= kMaxFd || g_fd[fd].load(std::memory_order_relaxed) == 0 || !records_writable()) return;
  g_fd[fd].store(0, std::memory_order_relaxed);
}

void fd_range_closed(unsigned first, unsigned last) {
  int high = g_high.load(std::memory_order_relaxed);
  if (high < 0 || first > unsigned(high) || !records_writable()) return;
  if (last > unsigned(high)) last = unsigned(high);
  for (unsigned fd = first; fd <= last; ++fd)
    if (g_fd[fd].load(std::memory_order_relaxed) != 0) g_fd[fd].store(0, std::memory_order_relaxed);
}

void fd_dup(int oldfd, int newfd) {
  if (newfd < 0 || newfd >= kMaxFd || oldfd == newfd || !records_writable()) return;
  uint8_t s = oldfd >= 0 && oldfd < kMaxFd ? g_fd[oldfd].load(std::memory_order_relaxed) : 0;
  if (s != 0) set_state(newfd, s);
  else if (g_fd[newfd].load(std::memory_order_relaxed) != 0) g_fd[newfd].store(0, std::memory_order_relaxed);
}

}  // namespace envrun::icpt::meter
