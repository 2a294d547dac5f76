// One registry, one repository: picks the scheme (https; with --insecure https without
// certificate checks, else plain http), probes /v2/, follows the bearer challenge for a
// pull token, and answers GETs under /v2/<repository>/ with the token attached.
#pragma once
#include <string>
#include <vector>

#include "bundle/registry_http.hpp"
#include "bundle/registry_reference.hpp"
#include "kernel/result.hpp"

namespace envrun::registry {

class RegistryClient {
 public:
  RegistryClient(ImageRef ref, bool insecure);
  // Probe the registry (/v2/) and obtain a token when it asks for one.
  Result<void> connect();
  // GET <base>/v2/<repository>/<what> (what: "manifests/<tag>", "blobs/<digest>").
  Result<HttpResponse> get(const std::string& what, std::vector<std::string> headers, size_t max_body = 8u << 20);
  std::string url(const std::string& what) const;
  // Headers every request carries (Authorization when a token is held).
  std::vector<std::string> auth_headers() const;
  const HttpClient& http() const { return http_; }
  const ImageRef& ref() const { return ref_; }
  // Error message prefix: "registry 127.0.0.1:5000".
  std::string where() const { return "registry " + ref_.registry; }

 private:
  Result<void> authenticate(const HttpResponse& challenge_response);

  ImageRef ref_;
  HttpClient http_;
  std::string scheme_ = "https";
  std::string token_;
};

// "<registry> said HTTP <status>" with the registry's error code/message when it sent JSON.
std::string describe_http_error(const HttpResponse& r);

}  // namespace envrun::registry
