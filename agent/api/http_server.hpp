// The HTTP side of the management API (cpp-httplib, Debian's libcpp-httplib): a unix socket
// (mode 0660) and/or a TCP listener that speaks TLS only, both handing every request to
// the Router (router.hpp); GET / and /ui/* serve the web console without a token. Request
// bodies over max_body get 413; every non-GET request and every 401/403 is audited.
#pragma once
#include <string>
#include <vector>

#include "agent/api/api.hpp"
#include "kernel/result.hpp"

namespace envrun::agent::api {

struct HttpOptions {
  std::string unix_path;   // "" = no unix socket
  std::string tcp_host;    // "" = no TCP listener
  int tcp_port = 0;
  std::string cert, key;   // PEM files, required with TCP
  size_t max_body = 1 << 20;
  int threads = 64;        // worker threads per listener (one per open connection)
};

// Serves until SIGTERM or SIGINT (blocked in the calling thread and read with sigwait).
Result<void> serve_http(ApiContext& ctx, const HttpOptions& o);

// The routes as "METHOD PATTERN" lines, in table order (envrun serve --list-routes).
std::vector<std::string> route_list(ApiContext& ctx);

}  // namespace envrun::agent::api
