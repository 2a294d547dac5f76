// A small HTTP client over libcurl's easy interface for registry requests (manifests,
// tokens, configs): the body is kept in memory (bounded), header names lowercased.
// Blob downloads use libcurl multi (registry_fetch.hpp) with the same handle setup.
#pragma once
#include <curl/curl.h>

#include <map>
#include <string>
#include <vector>

#include "kernel/result.hpp"

namespace envrun::registry {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lowercase name -> last value
  std::string header(const std::string& lower_name) const;
};

class HttpClient {
 public:
  // insecure: TLS certificates are not verified (plain HTTP is chosen by the caller).
  explicit HttpClient(bool insecure);
  // GET url; a transport failure is an Error (ErrorKind::System, curl's reason), any
  // HTTP status is a response. Bodies larger than max_body are an error.
  Result<HttpResponse> get(const std::string& url, const std::vector<std::string>& headers,
                           size_t max_body = 8u << 20) const;
  // The options every request shares (timeouts, redirects, TLS, user agent).
  void setup(CURL* h, const std::string& url) const;
  bool insecure() const { return insecure_; }

 private:
  bool insecure_;
};

// Owner of a curl_slist.
class HeaderList {
 public:
  explicit HeaderList(const std::vector<std::string>& lines);
  ~HeaderList();
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

}  // namespace envrun::registry
