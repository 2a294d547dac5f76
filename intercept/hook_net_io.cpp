// The send/recv family: destination addresses go out mapped (net rules for AF_INET/6,
// redirect rules for AF_UNIX paths), source addresses come back unmapped, and the meter
// counts the bytes (kBytesWritten/kBytesRead). Plain send/recv only count.
#include <errno.h>
#include <string.h>

#include "intercept/hook_net.hpp"
#include "intercept/hook.hpp"

// The fortified entry points (bits/socket2.h) are declared only under _FORTIFY_SOURCE.
extern "C" ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags);
extern "C" ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* addr,
                                  socklen_t* len);

using namespace envrun::icpt;
using envrun::ictl::kBytesRead;
using envrun::ictl::kBytesWritten;

namespace {

template <class T>
T counted(T r, envrun::ictl::Counter c) {
  if (r > 0) count(c, uint64_t(r));
  return r;
}

// A destination rewritten for the kernel: `addr`/`len` point at the caller's address or at
// the mapped copy held here. fail < 0: -errno from a rule.
struct Destination {
  const sockaddr* addr;
  socklen_t len;
  int fail = 0;
  sockaddr_storage copy;
  net::UnixTarget unix_target;

  Destination(int fd, const sockaddr* a, socklen_t l) : addr(a), len(l) {
    if (a == nullptr || l < socklen_t(sizeof(sa_family_t))) return;
    if (a->sa_family == AF_UNIX) {
      int m = net::map_unix_path(a, l, Op::Read, unix_target);
      if (m < 0) fail = m;
      if (m > 0) {
        addr = reinterpret_cast<const sockaddr*>(&unix_target.sa);
        len = unix_target.len;
      }
    } else if ((a->sa_family == AF_INET || a->sa_family == AF_INET6) && l <= socklen_t(sizeof copy) &&
               net::rules_active()) {
      memcpy(&copy, a, l);
      if (net::map_to_outside(fd, reinterpret_cast<sockaddr*>(&copy), l)) addr = reinterpret_cast<const sockaddr*>(&copy);
    }
  }
};

}  // namespace

HOOK ssize_t send(int fd, const void* buf, size_t n, int flags) {
  ensure_init();
  return counted(REAL(send)(fd, buf, n, flags), kBytesWritten);
}

HOOK ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* addr, socklen_t len) {
  ensure_init();
  ssize_t r;
  int e;
  {
    Destination d(fd, addr, len);
    if (d.fail < 0) {
      errno = -d.fail;
      return -1;
    }
    r = REAL(sendto)(fd, buf, n, flags, d.addr, d.len);
    e = errno;
  }
  errno = e;
  return counted(r, kBytesWritten);
}

HOOK ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  ensure_init();
  if (msg == nullptr || msg->msg_name == nullptr) return counted(REAL(sendmsg)(fd, msg, flags), kBytesWritten);
  ssize_t r;
  int e;
  {
    Destination d(fd, static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen);
    if (d.fail < 0) {
      errno = -d.fail;
      return -1;
    }
    msghdr m = *msg;
    m.msg_name = const_cast<sockaddr*>(d.addr);
    m.msg_namelen = d.len;
    r = REAL(sendmsg)(fd, &m, flags);
    e = errno;
  }
  errno = e;
  return counted(r, kBytesWritten);
}

HOOK int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) {
  ensure_init();
  bool may_map = false;
  bool inet_rules = net::rules_active(), file_rules = g_state.db_ok && g_state.db.file_count() > 0;
  for (unsigned i = 0; vec != nullptr && i < vlen && !may_map; ++i) {
    const auto* a = static_cast<const sockaddr*>(vec[i].msg_hdr.msg_name);
    if (a == nullptr || vec[i].msg_hdr.msg_namelen < socklen_t(sizeof(sa_family_t))) continue;
    may_map = a->sa_family == AF_UNIX ? file_rules : (a->sa_family == AF_INET || a->sa_family == AF_INET6) && inet_rules;
  }
  int r;
  if (!may_map) {
    r = REAL(sendmmsg)(fd, vec, vlen, flags);
  } else {
    // One message at a time with its own mapped destination: sendmmsg's partial-success
    // semantics (count of messages sent, error only when none was) are kept.
    r = 0;
    if (vlen > 1024) vlen = 1024;  // UIO_MAXIOV, as the kernel
    for (unsigned i = 0; i < vlen; ++i) {
      ssize_t n = sendmsg(fd, &vec[i].msg_hdr, flags);
      if (n < 0) {
        if (r == 0) return -1;
        break;
      }
      vec[i].msg_len = unsigned(n);
      ++r;
    }
    return r;  // bytes were counted by sendmsg
  }
  for (int i = 0; i < r; ++i) count(kBytesWritten, vec[i].msg_len);
  return r;
}

HOOK ssize_t recv(int fd, void* buf, size_t n, int flags) {
  ensure_init();
  return counted(REAL(recv)(fd, buf, n, flags), kBytesRead);
}

HOOK ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  ensure_init();
  return counted(REAL(__recv_chk)(fd, buf, n, buflen, flags), kBytesRead);
}

HOOK ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr, socklen_t* len) {
  ensure_init();
  socklen_t cap = len ? *len : 0;
  ssize_t r = REAL(recvfrom)(fd, buf, n, flags, addr, len);
  if (r >= 0) net::report_address(fd, addr, cap, len);
  return counted(r, kBytesRead);
}

HOOK ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* addr, socklen_t* len) {
  ensure_init();
  socklen_t cap = len ? *len : 0;
  ssize_t r = REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, len);
  if (r >= 0) net::report_address(fd, addr, cap, len);
  return counted(r, kBytesRead);
}

HOOK ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  ensure_init();
  socklen_t cap = msg ? msg->msg_namelen : 0;
  ssize_t r = REAL(recvmsg)(fd, msg, flags);
  if (r >= 0 && msg != nullptr)
    net::report_address(fd, static_cast<sockaddr*>(msg->msg_name), cap, &msg->msg_namelen);
  return counted(r, kBytesRead);
}

HOOK int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout) {
  ensure_init();
  constexpr unsigned kMax = 1024;  // UIO_MAXIOV: the kernel takes no more per call
  if (vlen > kMax) vlen = kMax;
  socklen_t caps[kMax];
  for (unsigned i = 0; vec != nullptr && i < vlen; ++i) caps[i] = vec[i].msg_hdr.msg_namelen;
  int r = REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
  for (int i = 0; i < r; ++i) {
    msghdr& h = vec[i].msg_hdr;
    net::report_address(fd, static_cast<sockaddr*>(h.msg_name), caps[i], &h.msg_namelen);
    count(kBytesRead, vec[i].msg_len);
  }
  return r;
}
