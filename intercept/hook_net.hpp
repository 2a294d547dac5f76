// Internals of the `net` interceptor shared by hook_net*.cpp (and by the exec hooks, which
// settle the connection meter before an exec). Internal to libenvrun-intercept.so.
#pragma once
#include <sys/socket.h>
#include <sys/un.h>

#include "intercept/resolve.hpp"

namespace envrun::icpt::net {

// ---- accepted connections (hook_net_fds.cpp) --------------------------------------------
// Count an accepted connection on `fd` (kAccepts, kConnectionsOpen/Peak, its peer in
// kDistinctPeers, its turns in kTransactions) while the meter is on. `addr` (cap bytes,
// *len filled by the kernel) is the peer as accept returned it, or null.
void note_accepted(int fd, const sockaddr* addr, socklen_t cap, const socklen_t* len);
// Before an exec: stop counting the tracked connections whose fd is close-on-exec (the
// kernel closes them without a close() call). Their fds are stored in `saved` (at most
// `cap`; the others stay counted); returns how many.
int release_cloexec_connections(int* saved, int cap);
// After a failed exec: count them again.
void restore_connections(const int* saved, int n);
// The process ends (exit, _exit): stop counting every tracked connection.
void release_connections_at_exit();

// ---- AF_UNIX names bound through /proc/self/fd/<dir>/<name> (hook_net_fds.cpp) -------------
// Remember the name the application asked for (`len` bytes of `sa`) for getsockname.
void remember_unix_name(int fd, const sockaddr_un& sa, socklen_t len);
// The remembered name of fd, or 0 when none; copies at most `cap` bytes into out.
socklen_t remembered_unix_name(int fd, sockaddr_un& out);

// ---- inet port/address rules (hook_net_map.cpp) -----------------------------------------
// True when the net interceptor is on and the DB has network rules (the fast-path test).
bool rules_active();
// Rewrite an AF_INET/AF_INET6 address the application gave (inside) to the one the kernel
// gets (outside), per the first matching NetRule. `fd` is asked for its type (SO_TYPE) only
// when a protocol-specific rule matches the port. Returns true when `sa` was changed.
bool map_to_outside(int fd, sockaddr* sa, socklen_t len);
// The reverse, for addresses the kernel reports (getsockname, getpeername, accept, recvfrom).
bool map_to_inside(int fd, sockaddr* sa, socklen_t len);

// ---- AF_UNIX socket paths (hook_net_unix.cpp) --------------------------------------------
// An AF_UNIX address rewritten through the redirect rules, ready for the real call.
struct UnixTarget {
  sockaddr_un sa;
  socklen_t len = 0;
  int tmp_dirfd = -1;       // the directory held open for the /proc/self/fd trick
  bool via_proc = false;    // the name is /proc/self/fd/<tmp_dirfd>/<name>
  ~UnixTarget();
};
// 1: `out` holds the mapped address; 0: not a redirected path (use the caller's address);
// -errno: fail the call. op: Op::Create for bind, Op::Read for connect/sendto.
int map_unix_path(const sockaddr* sa, socklen_t len, Op op, UnixTarget& out);
// Rewrite a real AF_UNIX path reported by the kernel (getsockname, getpeername, accept,
// recvfrom) to the inside view, in the caller's buffer of `cap` bytes; `*len` is updated
// to the full length as the kernel does (it may exceed cap: truncated).
void unix_to_inside(sockaddr* sa, socklen_t cap, socklen_t* len);

// ---- both families ----------------------------------------------------------------------
// Map an address reported by the kernel into the caller's buffer (`cap` bytes, `*len` the
// length the kernel returned). No-op for null buffers.
void report_address(int fd, sockaddr* sa, socklen_t cap, socklen_t* len);

}  // namespace envrun::icpt::net
