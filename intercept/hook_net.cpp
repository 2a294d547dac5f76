// The `net` interceptor's socket-address hooks: bind, connect, getsockname, getpeername,
// accept, accept4. Inside ports/addresses go out mapped per the DB's network rules and
// come back unmapped, so the application sees its own endpoints; AF_UNIX paths go through
// the redirect rules (hook_net_unix.cpp). The meter counts binds, connects, accepts,
// mapped ports and open accepted connections.
#include <errno.h>
#include <string.h>

#include "intercept/hook_net.hpp"
#include "intercept/hook.hpp"

using namespace envrun::icpt;
using envrun::ictl::Counter;

namespace {

bool is_inet(const sockaddr* sa, socklen_t len) {
  return sa != nullptr && len >= socklen_t(sizeof(sa_family_t)) &&
         (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}
bool is_unix(const sockaddr* sa, socklen_t len) {
  return sa != nullptr && len >= socklen_t(sizeof(sa_family_t)) && sa->sa_family == AF_UNIX;
}

// A redirected AF_UNIX address: 1 and the call's result in r, 0 when the path is not
// redirected, -1 (errno set) when a rule refuses it.
template <class Call>
int call_unix(int fd, const sockaddr* addr, socklen_t len, Op op, Counter done, Call call, int& r) {
  int saved;
  {
    net::UnixTarget t;
    int m = net::map_unix_path(addr, len, op, t);
    if (m <= 0) {
      if (m < 0) errno = -m;
      return m < 0 ? -1 : 0;
    }
    r = call(reinterpret_cast<const sockaddr*>(&t.sa), t.len);
    saved = errno;
    if (r == 0 && t.via_proc && op == Op::Create)
      net::remember_unix_name(fd, *reinterpret_cast<const sockaddr_un*>(addr), len);
    if (r == 0 || saved == EINPROGRESS) count(done);
  }  // closes the directory fd of the /proc/self/fd trick
  errno = saved;
  return 1;
}

// bind/connect share one shape: map the address, call, count.
template <class Call>
int with_mapped_address(int fd, const sockaddr* addr, socklen_t len, Op unix_op, Counter done, Call call) {
  int r;
  if (is_unix(addr, len)) {
    int m = call_unix(fd, addr, len, unix_op, done, call, r);
    if (m != 0) return m < 0 ? -1 : r;
  } else if (is_inet(addr, len) && len <= socklen_t(sizeof(sockaddr_storage)) && net::rules_active()) {
    sockaddr_storage ss;
    memcpy(&ss, addr, len);
    if (net::map_to_outside(fd, reinterpret_cast<sockaddr*>(&ss), len)) {
      r = call(reinterpret_cast<const sockaddr*>(&ss), len);
      if (r == 0 || errno == EINPROGRESS) {
        int saved = errno;
        count(done);
        count(envrun::ictl::kPortsMapped);
        errno = saved;
      }
      return r;
    }
  }
  r = call(addr, len);
  if (r == 0 || errno == EINPROGRESS) {
    int saved = errno;
    count(done);
    errno = saved;
  }
  return r;
}

}  // namespace

HOOK int bind(int fd, const sockaddr* addr, socklen_t len) {
  ensure_init();
  return with_mapped_address(fd, addr, len, Op::Create, envrun::ictl::kBinds,
                             [fd](const sockaddr* a, socklen_t l) { return REAL(bind)(fd, a, l); });
}

HOOK int connect(int fd, const sockaddr* addr, socklen_t len) {
  ensure_init();
  return with_mapped_address(fd, addr, len, Op::Read, envrun::ictl::kConnects,
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
  int c = REAL(accept)(fd, addr, len);
  if (c < 0) return c;
  int saved = errno;
  net::note_accepted(c);
  net::report_address(c, addr, cap, len);
  errno = saved;
  return c;
}

HOOK int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  ensure_init();
  socklen_t cap = len ? *len : 0;
  int c = REAL(accept4)(fd, addr, len, flags);
  if (c < 0) return c;
  int saved = errno;
  net::note_accepted(c);
  net::report_address(c, addr, cap, len);
  errno = saved;
  return c;
}
