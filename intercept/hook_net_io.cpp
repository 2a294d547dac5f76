// The send/recv family: destination addresses go out mapped (net rules for AF_INET/6,
// redirect rules for AF_UNIX paths), source addresses come back unmapped, and the meter
// counts the bytes (kBytesWritten/kBytesRead and kNetBytesSent/kNetBytesReceived) and the
// transaction turns of accepted connections. Plain send/recv only count.
#include <errno.h>
#include <string.h>

#include "intercept/hook_net.hpp"
#include "intercept/hook.hpp"
#include "intercept/chain.hpp"
#include "intercept/meter.hpp"

// The fortified entry points (bits/socket2.h) are declared only under _FORTIFY_SOURCE.
extern "C" ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags);
extern "C" ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* addr,
                                  socklen_t* len);

using namespace envrun::icpt;

namespace {

// The steps of a send/recv call. redirect maps an AF_UNIX destination through the file
// rules (and may refuse it), net maps an inet destination; the real function gets the
// result; the meter counts the bytes (MeterAs::BytesOut/BytesIn) in its leave step.
template <class Fn>
struct IoSteps : NoSteps {
  Fn fn;
  int fd;
  const sockaddr* addr;  // destination (null: none)
  socklen_t len;
  sockaddr_storage copy;
  net::UnixTarget unix_target;  // closes the directory fd of the /proc/self/fd trick
  IoSteps(Fn f, int d, const sockaddr* a, socklen_t l) : fn(f), fd(d), addr(a), len(l) {}
  bool has(sa_family_t fam) const { return addr != nullptr && len >= socklen_t(sizeof(sa_family_t)) && addr->sa_family == fam; }
  bool redirect(Call& c) {
    if (!has(AF_UNIX)) return true;
    int m = net::map_unix_path(addr, len, Op::Read, unix_target);
    if (m < 0) return refuse(c, m);
    if (m > 0) {
      addr = reinterpret_cast<const sockaddr*>(&unix_target.sa);
      len = unix_target.len;
    }
    return true;
  }
  bool net(Call& c) {
    if (!(has(AF_INET) || has(AF_INET6)) || len > socklen_t(sizeof copy) || !net::rules_active()) return true;
    memcpy(&copy, addr, len);
    if (net::map_to_outside(fd, reinterpret_cast<sockaddr*>(&copy), len)) {
      addr = reinterpret_cast<const sockaddr*>(&copy);
      c.mapped = true;
    }
    return true;
  }
  void real(Call& c) {
    c.result = long(fn(addr, len));
    if (c.result < 0) c.failed = true, c.err = errno;
  }
};

// Run a send/recv call through the net class's chain: fn(addr, len) with the (mapped)
// destination. The result, or -1 with errno.
template <class Fn>
ssize_t io_call(MeterAs as, int fd, const sockaddr* addr, socklen_t len, Fn fn) {
  Call c;
  c.cls = CallClass::Net;
  c.meter = as;
  c.fd = fd;
  {
    IoSteps<Fn> h(fn, fd, addr, len);
    run_chain(c, plan_for(CallClass::Net, live_mask()), h);
  }
  if (c.failed) errno = c.err;
  return c.failed ? -1 : ssize_t(c.result);
}

constexpr MeterAs kOut = MeterAs::BytesOut;
constexpr MeterAs kIn = MeterAs::BytesIn;

}  // namespace

HOOK ssize_t send(int fd, const void* buf, size_t n, int flags) {
  ensure_init();
  return io_call(kOut, fd, nullptr, 0, [=](const sockaddr*, socklen_t) { return REAL(send)(fd, buf, n, flags); });
}

HOOK ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* addr, socklen_t len) {
  ensure_init();
  return io_call(kOut, fd, addr, len,
                 [=](const sockaddr* a, socklen_t l) { return REAL(sendto)(fd, buf, n, flags, a, l); });
}

HOOK ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  ensure_init();
  const sockaddr* dest = msg != nullptr ? static_cast<const sockaddr*>(msg->msg_name) : nullptr;
  return io_call(kOut, fd, dest, dest ? msg->msg_namelen : 0, [=](const sockaddr* a, socklen_t l) {
    if (a == dest) return REAL(sendmsg)(fd, msg, flags);
    msghdr m = *msg;
    m.msg_name = const_cast<sockaddr*>(a);
    m.msg_namelen = l;
    return REAL(sendmsg)(fd, &m, flags);
  });
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
  if (r > 0 && on(live_mask(), g_state.idx_meter))
    for (int i = 0; i < r; ++i) meter::net_out(fd, vec[i].msg_len);
  return r;
}

HOOK ssize_t recv(int fd, void* buf, size_t n, int flags) {
  ensure_init();
  return io_call(kIn, fd, nullptr, 0, [=](const sockaddr*, socklen_t) { return REAL(recv)(fd, buf, n, flags); });
}

HOOK ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  ensure_init();
  return io_call(kIn, fd, nullptr, 0,
                 [=](const sockaddr*, socklen_t) { return REAL(__recv_chk)(fd, buf, n, buflen, flags); });
}

HOOK ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr, socklen_t* len) {
  ensure_init();
  socklen_t cap = len ? *len : 0;
  return io_call(kIn, fd, nullptr, 0, [=](const sockaddr*, socklen_t) {
    ssize_t r = REAL(recvfrom)(fd, buf, n, flags, addr, len);
    if (r >= 0) net::report_address(fd, addr, cap, len);
    return r;
  });
}

HOOK ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* addr, socklen_t* len) {
  ensure_init();
  socklen_t cap = len ? *len : 0;
  return io_call(kIn, fd, nullptr, 0, [=](const sockaddr*, socklen_t) {
    ssize_t r = REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, len);
    if (r >= 0) net::report_address(fd, addr, cap, len);
    return r;
  });
}

HOOK ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  ensure_init();
  socklen_t cap = msg ? msg->msg_namelen : 0;
  return io_call(kIn, fd, nullptr, 0, [=](const sockaddr*, socklen_t) {
    ssize_t r = REAL(recvmsg)(fd, msg, flags);
    if (r >= 0 && msg != nullptr)
      net::report_address(fd, static_cast<sockaddr*>(msg->msg_name), cap, &msg->msg_namelen);
    return r;
  });
}

HOOK int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout) {
  ensure_init();
  constexpr unsigned kMax = 1024;  // UIO_MAXIOV: the kernel takes no more per call
  if (vlen > kMax) vlen = kMax;
  socklen_t caps[kMax];
  for (unsigned i = 0; vec != nullptr && i < vlen; ++i) caps[i] = vec[i].msg_hdr.msg_namelen;
  int r = REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
  bool metered = r > 0 && on(live_mask(), g_state.idx_meter);
  for (int i = 0; i < r; ++i) {
    msghdr& h = vec[i].msg_hdr;
    net::report_address(fd, static_cast<sockaddr*>(h.msg_name), caps[i], &h.msg_namelen);
    if (metered && vec[i].msg_len > 0) meter::net_in(fd, vec[i].msg_len);
  }
  return r;
}
