// Socket address helpers (sockets.hpp).
#include "ckpt/sockets.hpp"

#include <arpa/inet.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

namespace envrun::ckpt::sock {

void from_sockaddr(const sockaddr_storage& sa, socklen_t len, std::string& addr, int& port) {
  char buf[INET6_ADDRSTRLEN] = {};
  addr.clear();
  port = 0;
  if (sa.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    addr = buf;
    port = ntohs(in->sin_port);
  } else if (sa.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    addr = buf;
    port = ntohs(in6->sin6_port);
  } else if (sa.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&sa);
    size_t n = len > offsetof(sockaddr_un, sun_path) ? size_t(len) - offsetof(sockaddr_un, sun_path) : 0;
    if (n == 0) return;
    if (un->sun_path[0] == '\0') addr = "@" + std::string(un->sun_path + 1, n - 1);
    else addr = std::string(un->sun_path, strnlen(un->sun_path, n));
  }
}

bool to_sockaddr(int family, const std::string& addr, int port, sockaddr_storage& sa, socklen_t& len) {
  std::memset(&sa, 0, sizeof sa);
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&sa);
    in->sin_family = AF_INET;
    in->sin_port = htons(uint16_t(port));
    len = sizeof *in;
    return ::inet_pton(AF_INET, addr.c_str(), &in->sin_addr) == 1;
  }
  if (family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&sa);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(uint16_t(port));
    len = sizeof *in6;
    return ::inet_pton(AF_INET6, addr.c_str(), &in6->sin6_addr) == 1;
  }
  if (family == AF_UNIX) {
    auto* un = reinterpret_cast<sockaddr_un*>(&sa);
    un->sun_family = AF_UNIX;
    if (addr.size() >= sizeof un->sun_path) return false;
    std::memcpy(un->sun_path, addr.data(), addr.size());
    if (!addr.empty() && addr[0] == '@') un->sun_path[0] = '\0';
    len = socklen_t(offsetof(sockaddr_un, sun_path) + addr.size() + (addr.empty() || addr[0] == '@' ? 0 : 1));
    return true;
  }
  return false;
}

std::string describe(int family, int type, const std::string& addr, int port) {
  std::string kind = family == AF_UNIX ? "unix" : family == AF_INET ? "inet" : family == AF_INET6 ? "inet6" : "family " + std::to_string(family);
  kind += type == SOCK_STREAM ? " stream" : type == SOCK_DGRAM ? " dgram" : type == SOCK_SEQPACKET ? " seqpacket" : " type " + std::to_string(type);
  if (family == AF_UNIX) return kind + (addr.empty() ? " (unnamed)" : " " + addr);
  return kind + " " + (family == AF_INET6 ? "[" + addr + "]" : addr) + ":" + std::to_string(port);
}

}  // namespace envrun::ckpt::sock
