// One registry, one repository: picks the scheme (https; with --insecure https without
// certificate checks, else plain http), probes /v2/, follows the bearer challenge for a
// pull token, and answers GETs under /v2/<repository>/ with the token attached.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "bundle/registry_credentials.hpp"
#include "bundle/registry_http.hpp"
#include "bundle/registry_reference.hpp"
#include "kernel/result.hpp"

namespace envrun::registry {

class RegistryClient {
 public:
  RegistryClient(ImageRef ref, bool insecure);
  // Credentials for the token server (Basic) or a registry asking for Basic itself; without
  // them connect() looks the registry up in auth_file() (set_auth_file to name another).
  void set_credentials(Credentials c) { creds_ = std::move(c); }
  void set_auth_file(std::string file) { auth_file_ = std::move(file); }
  // Token scope actions: "pull" (default) or "pull,push".
  void set_actions(std::string actions) { actions_ = std::move(actions); }
  std::string base_url() const { return scheme_ + "://" + ref_.registry; }
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
  std::string basic_;  // "Authorization: Basic ..." when the registry itself asks for Basic
  std::optional<Credentials> creds_;
  std::string auth_file_;
  std::string actions_ = "pull";
};

// "<registry> said HTTP <status>" with the registry's error code/message when it sent JSON.
std::string describe_http_error(const HttpResponse& r);

}  // namespace envrun::registry
