// What dump and restore agree on for sockets: the socket options saved by name, and
// socket addresses to and from text.
#pragma once
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <string>

#include "kernel/result.hpp"

namespace envrun::ckpt::sock {

struct Option {
  const char* name;
  int level, opt;
  int family;  // 0: any family; else only that one
  bool tcp;    // only for TCP sockets
};

// Integer options carried over. Buffer sizes are left to the kernel's defaults (the
// value read is doubled by the kernel and the setting is locked once written).
inline constexpr Option kOptions[] = {
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, 0, false},  {"reuseport", SOL_SOCKET, SO_REUSEPORT, 0, false},
    {"keepalive", SOL_SOCKET, SO_KEEPALIVE, 0, false},  {"broadcast", SOL_SOCKET, SO_BROADCAST, 0, false},
    {"passcred", SOL_SOCKET, SO_PASSCRED, AF_UNIX, false}, {"v6only", IPPROTO_IPV6, IPV6_V6ONLY, AF_INET6, false},
    {"nodelay", IPPROTO_TCP, TCP_NODELAY, 0, true},     {"keepidle", IPPROTO_TCP, TCP_KEEPIDLE, 0, true},
    {"keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, 0, true}, {"keepcnt", IPPROTO_TCP, TCP_KEEPCNT, 0, true},
    {"defer_accept", IPPROTO_TCP, TCP_DEFER_ACCEPT, 0, true},
};

inline bool applies(const Option& o, int family, int type, int protocol) {
  if (o.family && o.family != family) return false;
  if (o.tcp) return (family == AF_INET || family == AF_INET6) && type == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
  if (o.level == SOL_SOCKET) return true;
  return family == AF_INET || family == AF_INET6;
}

// sockaddr -> (text, port); unix: the path, "@name" for an abstract name, "" unbound.
void from_sockaddr(const sockaddr_storage& sa, socklen_t len, std::string& addr, int& port);
// (family, text, port) -> sockaddr; false on an address that does not parse.
bool to_sockaddr(int family, const std::string& addr, int port, sockaddr_storage& sa, socklen_t& len);
std::string describe(int family, int type, const std::string& addr, int port);

// IP_FREEBIND (IPV6_FREEBIND) on or off: a restored socket binds its address even when
// the address is not (yet) on this host (a migration moves it after the restore); turned
// off again once bound, as the app had it. A connection also needs IP_TRANSPARENT
// (transparent: CAP_NET_ADMIN, as TCP_REPAIR) for its connect's route from that address.
inline void set_freebind(int s, int family, int on, bool transparent = false) {
  if (family == AF_INET) (void)::setsockopt(s, IPPROTO_IP, IP_FREEBIND, &on, sizeof on);
  if (family == AF_INET6) (void)::setsockopt(s, IPPROTO_IPV6, IPV6_FREEBIND, &on, sizeof on);
  if (transparent && family == AF_INET) (void)::setsockopt(s, IPPROTO_IP, IP_TRANSPARENT, &on, sizeof on);
  if (transparent && family == AF_INET6) (void)::setsockopt(s, IPPROTO_IPV6, IPV6_TRANSPARENT, &on, sizeof on);
}

}  // namespace envrun::ckpt::sock
