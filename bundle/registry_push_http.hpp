// The requests a push makes besides GET: HEAD (does the registry have this blob?), POST
// (open an upload session), PUT (a monolithic blob upload from a file or memory, and the
// manifest). Same handle setup as HttpClient::get; the auth headers of the RegistryClient.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "bundle/registry_client.hpp"
#include "kernel/result.hpp"

namespace envrun::registry {

// A request body: `data` when fd < 0, else `size` bytes read from fd's start.
struct RequestBody {
  std::string data;
  int fd = -1;
  int64_t size = 0;
};

// method: "HEAD", "POST", "PUT". A transport failure is an Error (ErrorKind::System).
Result<HttpResponse> send_request(RegistryClient& client, const std::string& method, const std::string& url,
                                  std::vector<std::string> headers, const RequestBody& body = {});

}  // namespace envrun::registry
