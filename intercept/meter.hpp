// The meter's counting (intercept/README.md, "Counters"): what the meter interceptor's
// steps and the I/O hooks call once they know the meter is on. Internal to
// libenvrun-intercept.so; no allocation, no locks, errno untouched (raw system calls only).
//
//   bytes      io_in/io_out: kBytesRead/kBytesWritten for files, sockets, pipes and
//              character devices (fds of other kinds, eventfd/timerfd/epoll..., are not
//              counted), plus kNetBytesReceived/kNetBytesSent when the fd is a socket. An
//              fd's kind is asked once (fstat) and cached until it is closed.
//   turns      kTransactions: a write to an accepted connection after a read from it since
//              its last write (per fd; dup copies the state).
//   peers      kDistinctPeers: the peer IP address of accepted and connected sockets, once
//              per instance (the control page's `peers` table).
//   processes  kProcessesStarted: the constructor and fork children; an exec of a counted
//              process is not counted again (the control page's `exec_pids`).
// The byte and transaction counters are batched per thread (meter_batch.cpp) and flushed to
// the control page every kFlushEvery additions, at close and accept, at thread and process
// exit, before exec and fork.
#pragma once
#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "intercept/control.h"

namespace envrun::icpt::meter {

// ---- batching (meter_batch.cpp) --------------------------------------------------------
// The counters batched per thread, in this order.
enum Hot : uint8_t { kHotRead = 0, kHotWritten, kHotNetIn, kHotNetOut, kHotTurns, kHotCount };
// Additions between two flushes of a thread's batch (a read of a file is one addition, of a
// socket two, a write that ends a turn three): what a killed process may lose per thread.
inline constexpr uint32_t kFlushEvery = 64;
// Add n to a batched counter of the calling thread.
void add_hot(Hot h, uint64_t n);
// Move the calling thread's batch to the control page.
void flush_thread();
// Move every thread's batch of this process to the control page (exit, exec, fork).
void flush_process();
// Set up the thread-exit flush and the fork handlers (once, from the library's init).
void batch_init();

// ---- bytes and turns (meter_fd.cpp) ----------------------------------------------------
// n > 0 bytes were read from / written to fd by a hooked call (inline fast path below).
inline void io_in(int fd, uint64_t n);
inline void io_out(int fd, uint64_t n);
// The same for a call that only works on sockets (recv/send family): no kind check.
void net_in(int fd, uint64_t n);
void net_out(int fd, uint64_t n);
// fd is an accepted connection (transactions are counted on it).
void fd_accepted(int fd);
// fd is a new socket (socket, socketpair): whatever the meter knew of an fd of that number
// (closed where no hook saw it, e.g. by pclose) is replaced.
void fd_new_socket(int fd);
// fd was closed (by close, dup2/dup3 onto it, ...): forget its kind and turn state.
void fd_closed(int fd);
void fd_range_closed(unsigned first, unsigned last);
// newfd is a duplicate of oldfd: it gets oldfd's kind and turn state.
void fd_dup(int oldfd, int newfd);

// ---- the hot path's data, for the inline io_in/io_out ----------------------------------
namespace detail {

// One byte per fd (meter_fd.cpp): its kind, and the turn state of accepted connections.
inline constexpr int kMaxFd = 1 << 20;
inline constexpr uint8_t kKindMask = 0x3;
inline constexpr uint8_t kUnknown = 0, kSocket = 1, kCounted = 2, kIgnored = 3;  // kinds
inline constexpr uint8_t kAccepted = 0x4;   // an accepted connection: turns are counted
inline constexpr uint8_t kReadSince = 0x8;  // read since its last write
extern std::atomic<uint8_t> g_fd[kMaxFd];

// A thread's batch (meter_batch.cpp): cumulative totals written by the owner only, and how
// much of each was moved to the control page (advanced by CAS, by any thread).
struct alignas(64) Slot {
  uint32_t calls = 0;                      // owner only: additions since its last flush
  std::atomic<uint64_t> total[kHotCount];  // owner stores, anyone loads
  alignas(64) std::atomic<uint64_t> flushed[kHotCount];
  std::atomic<int> used;                   // 0: free
};
// The calling thread's slot; null before its first count, and for threads without one.
extern __thread Slot* t_slot __attribute__((tls_model("initial-exec")));
void flush_owned(Slot& s);

// Add to the owner's total: one instruction where we can (a signal handler of the same
// thread that counts cannot fall between a load and a store), no lock (no other writer).
inline void add_owned(std::atomic<uint64_t>& total, uint64_t n) {
#if defined(__x86_64__)
  __asm__("addq %1, %0" : "+m"(*reinterpret_cast<uint64_t*>(&total)) : "er"(n));
#else
  total.store(total.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
#endif
}

inline void bump(Slot& s, Hot h, uint64_t n) {
  add_owned(s.total[h], n);
  if (__builtin_expect(++s.calls >= kFlushEvery, 0)) flush_owned(s);
}

void io_in_slow(int fd, uint64_t n);
void io_out_slow(int fd, uint64_t n);

}  // namespace detail

// The common case inline: a thread with a slot, an fd already known to be a file, pipe or
// device (sockets, unknown fds and the rest take the slow path).
inline void io_in(int fd, uint64_t n) {
  detail::Slot* s = detail::t_slot;
  if (__builtin_expect(s != nullptr && unsigned(fd) < unsigned(detail::kMaxFd), 1) &&
      (detail::g_fd[fd].load(std::memory_order_relaxed) & detail::kKindMask) == detail::kCounted)
    return detail::bump(*s, kHotRead, n);
  detail::io_in_slow(fd, n);
}
inline void io_out(int fd, uint64_t n) {
  detail::Slot* s = detail::t_slot;
  if (__builtin_expect(s != nullptr && unsigned(fd) < unsigned(detail::kMaxFd), 1) &&
      (detail::g_fd[fd].load(std::memory_order_relaxed) & detail::kKindMask) == detail::kCounted)
    return detail::bump(*s, kHotWritten, n);
  detail::io_out_slow(fd, n);
}

// ---- peers (meter_peers.cpp) -----------------------------------------------------------
// An AF_INET/AF_INET6 peer address (others are ignored): counted once per instance.
void note_peer(const sockaddr* sa, socklen_t len);
// The peer of a connected socket fd (getpeername), when the caller has no address.
void note_peer_of(int fd);

// ---- processes (meter_proc.cpp) ---------------------------------------------------------
// The library's constructor: count this process unless it is a counted process that just
// exec'd (its entry in exec_pids is removed).
void process_loaded();
// A fork child (pthread_atfork): count it.
void process_forked();
// A process restored into a new instance (the checkpoint thread's restore hook): count it
// there, once.
void process_restored();
// Before an exec or spawn (meter enter step): flush, and mark this process as counted.
// exec_end: the exec failed, or the spawn returned.
void exec_begin();
void exec_end();

}  // namespace envrun::icpt::meter
