// The `net` interceptor's socket-address hooks: bind, connect, getsockname, getpeername,
// accept, accept4 (and socket, socketpair: the meter learns the new fds' kind). Inside ports/addresses go out mapped per the DB's network rules and
// come back unmapped, so the application sees its own endpoints; AF_UNIX paths go through
// the redirect rules (hook_net_unix.cpp). The meter counts binds, connects, accepts,
// mapped ports and open accepted connections.
#include <errno.h>
#include <string.h>

#include "intercept/hook_net.hpp"
#include "intercept/hook.hpp"
#include "intercept/chain.hpp"
#include "intercept/meter.hpp"

using namespace envrun::icpt;

namespace {

bool is_inet(const sockaddr* sa, socklen_t len) {
  return sa != nullptr && len >= socklen_t(sizeof(sa_family_t)) &&
         (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}
bool is_unix(const sockaddr* sa, socklen_t len) {
  return sa != nullptr && len >= socklen_t(sizeof(sa_family_t)) && sa->sa_family == AF_UNIX;
}

// bind/connect's steps: redirect maps an AF_UNIX path through the file rules (and may
// refuse it), net maps an inside port/address to the outside one, the meter counts
// kBinds/kConnects (+ kPortsMapped) for calls that succeeded or are in progress.
template <class Fn>
struct AddrSteps : NoSteps {
  Fn fn;
  int fd;
  Op unix_op;
  const sockaddr* asked;  // the caller's address
  socklen_t asked_len;
  const sockaddr* addr;   // what the kernel gets
  socklen_t len;
  bool via_proc = false;
  sockaddr_storage ss;
  net::UnixTarget t;      // closes the directory fd of the /proc/self/fd trick
  AddrSteps(Fn f, int d, Op op, const sockaddr* a, socklen_t l)
      : fn(f), fd(d), unix_op(op), asked(a), asked_len(l), addr(a), len(l) {}
  bool redirect(Call& c) {
    if (!is_unix(addr, len)) return true;
    int m = net::map_unix_path(addr, len, unix_op, t);
    if (m < 0) return refuse(c, m);
    if (m > 0) {
      addr = reinterpret_cast<const sockaddr*>(&t.sa);
      len = t.len;
      via_proc = t.via_proc;
    }
    return true;
  }
  bool net(Call& c) {
    if (!is_inet(addr, len) || len > socklen_t(sizeof ss) || !net::rules_active()) return true;
    memcpy(&ss, addr, len);
    if (net::map_to_outside(fd, reinterpret_cast<sockaddr*>(&ss), len)) {
      addr = reinterpret_cast<const sockaddr*>(&ss);
      c.mapped = true;
    }
    return true;
  }
  void real(Call& c) {
    c.result = fn(addr, len);
    c.err = errno;
    c.addr = addr;
    c.addr_len = len;
    c.failed = c.result != 0 && c.err != EINPROGRESS;
    if (c.result == 0 && via_proc && unix_op == Op::Create)
      net::remember_unix_name(fd, *reinterpret_cast<const sockaddr_un*>(asked), asked_len);
  }
};

template <class Fn>
int with_mapped_address(int fd, const sockaddr* addr, socklen_t len, Op unix_op, MeterAs as, Fn fn) {
  Call c;
  c.cls = CallClass::Net;
  c.meter = as;
  {
    AddrSteps<Fn> h(fn, fd, unix_op, addr, len);
    run_chain(c, plan_for(CallClass::Net, live_mask()), h);
  }
  if (c.result != 0) errno = c.err;
  return int(c.result);
}

}  // namespace

HOOK int socket(int domain, int type, int protocol) noexcept {
  ensure_init();
  int fd = REAL(socket)(domain, type, protocol);
  if (fd >= 0) meter::fd_new_socket(fd);
  return fd;
}

HOOK int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
  ensure_init();
  int r = REAL(socketpair)(domain, type, protocol, sv);
  if (r == 0) meter::fd_new_socket(sv[0]), meter::fd_new_socket(sv[1]);
  return r;
}

HOOK int bind(int fd, const sockaddr* addr, socklen_t len) {
  ensure_init();
  return with_mapped_address(fd, addr, len, Op::Create, MeterAs::Bind,
                             [fd](const sockaddr* a, socklen_t l) { return REAL(bind)(fd, a, l); });
}

HOOK int connect(int fd, const sockaddr* addr, socklen_t len) {
  ensure_init();
  return with_mapped_address(fd, addr, len, Op::Read, MeterAs::Connect,
                             [fd](const sockaddr* a, socklen_t l) { return REAL(connect)(fd, a, l); });
}

HOOK int getsockname(int fd, sockaddr* addr, socklen_t* len) {
  ensure_init();
  socklen_t cap = len ? *len : 0;
  int r = REAL(getsockname)(fd, addr, len);
  if (r != 0 || addr == nullptr || cap < socklen_t(sizeof(sa_family_t))) return r;
  if (addr->sa_family == AF_UNIX) {
    sockaddr_un asked;
    if (socklen_t n = net::remembered_unix_name(fd, asked)) {
      memcpy(addr, &asked, n < cap ? n : cap);
      *len = n;
      return 0;
    }
  }
  net::report_address(fd, addr, cap, len);
  return 0;
}

HOOK int getpeername(int fd, sockaddr* addr, socklen_t* len) {
  ensure_init();
  socklen_t cap = len ? *len : 0;
  int r = REAL(getpeername)(fd, addr, len);
  if (r == 0) net::report_address(fd, addr, cap, len);
  return r;
}

HOOK int accept(int fd, sockaddr* addr, socklen_t* len) {
  ensure_init();
  socklen_t cap = len ? *len : 0;
  meter::flush_thread();  // the thread may now wait for the next connection
  int c = REAL(accept)(fd, addr, len);
  if (c < 0) return c;
  int saved = errno;
  net::note_accepted(c, addr, cap, len);
  net::report_address(c, addr, cap, len);
  errno = saved;
  return c;
}

HOOK int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  ensure_init();
  socklen_t cap = len ? *len : 0;
  meter::flush_thread();  // the thread may now wait for the next connection
  int c = REAL(accept4)(fd, addr, len, flags);
  if (c < 0) return c;
  int saved = errno;
  net::note_accepted(c, addr, cap, len);
  net::report_address(c, addr, cap, len);
  errno = saved;
  return c;
}
