// TCP endpoints of the migration transport: "ADDR:PORT" with a numeric IPv4 address,
// "[IPv6]:PORT", or "HOST:PORT" with a name /etc/hosts or DNS knows (its first address).
// "localhost" is 127.0.0.1 and an empty host (":PORT") every IPv4 address.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::ha {

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;  // as given
};

Result<Endpoint> parse_endpoint(const std::string& s);
// "10.0.0.1:41234" of a peer address.
std::string endpoint_text(const sockaddr* sa);
// Connects within timeout_ms (blocking fd returned).
Result<UniqueFd> connect_to(const Endpoint& e, int timeout_ms);
// A listening socket (SO_REUSEADDR, backlog 8, close-on-exec).
Result<UniqueFd> listen_on(const Endpoint& e);

}  // namespace envrun::ha
