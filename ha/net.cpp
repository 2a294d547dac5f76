// parse_endpoint, connect_to, listen_on.
#include "ha/net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace envrun::ha {

Result<Endpoint> parse_endpoint(const std::string& s) {
  auto bad = [&](const std::string& why) {
    return Error::make(ErrorKind::Usage, "\"" + s + "\": " + why + " (want HOST:PORT, ADDR:PORT or [IPV6]:PORT)");
  };
  std::string host, port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return bad("unbalanced [");
    host = s.substr(1, close - 1), port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) return bad("no port");
    host = s.substr(0, colon), port = s.substr(colon + 1);
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end || p < 1 || p > 65535) return bad("port must be 1..65535");
  Endpoint e;
  e.text = s;
  if (host == "localhost" || host.empty()) host = host.empty() ? "0.0.0.0" : "127.0.0.1";
  auto* v4 = reinterpret_cast<sockaddr_in*>(&e.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&e.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET, v4->sin_port = htons(uint16_t(p)), e.len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6, v6->sin6_port = htons(uint16_t(p)), e.len = sizeof *v6;
  } else {
    // A host name: the name service (/etc/hosts, DNS) through getaddrinfo, which the
    // static binary has already for the registry client (it loads glibc's NSS modules).
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || !res) return bad("host \"" + host + "\" not found: " + (rc ? ::gai_strerror(rc) : "no address"));
    std::memcpy(&e.addr, res->ai_addr, res->ai_addrlen);
    e.len = socklen_t(res->ai_addrlen);
    ::freeaddrinfo(res);
    if (e.addr.ss_family == AF_INET) v4->sin_port = htons(uint16_t(p));
    else if (e.addr.ss_family == AF_INET6) v6->sin6_port = htons(uint16_t(p));
    else return bad("host \"" + host + "\" has no IPv4 or IPv6 address");
  }
  return e;
}

std::string endpoint_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "unix";
}

Result<UniqueFd> connect_to(const Endpoint& e, int timeout_ms) {
  UniqueFd fd(::socket(e.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Error::sys("socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&e.addr), e.len) < 0) {
    if (errno != EINPROGRESS) return Error::sys("connect to " + e.text);
    pollfd p{fd.get(), POLLOUT, 0};
    int n;
    do n = ::poll(&p, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n == 0) return Error::make(ErrorKind::Generic, "connect to " + e.text + ": timed out after " + std::to_string(timeout_ms / 1000) + " s");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) return Error::sys("connect to " + e.text, err);
  }
  int fl = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

Result<UniqueFd> listen_on(const Endpoint& e) {
  UniqueFd fd(::socket(e.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::sys("socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&e.addr), e.len) < 0) return Error::sys("--listen " + e.text);
  if (::listen(fd.get(), 8) < 0) return Error::sys("listen on " + e.text);
  return fd;
}

}  // namespace envrun::ha
