// The distribution token flow: a 401 carries `WWW-Authenticate: Bearer realm="...",
// service="...",scope="..."`; GET realm?service=..&scope=.. returns {"token": ...}
// (or "access_token"), sent back as `Authorization: Bearer <token>`; anonymous, or with
// Basic credentials from `envrun login` (registry_credentials.hpp).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "bundle/registry_http.hpp"
#include "kernel/result.hpp"

namespace envrun::registry {

struct Challenge {
  std::string scheme;                         // "bearer" or "basic" (lowercased)
  std::map<std::string, std::string> params;  // realm, service, scope (names lowercased)
};

// Parse one WWW-Authenticate header value; nullopt when it is not understood.
std::optional<Challenge> parse_challenge(std::string_view header);

// Ask the challenge's realm for a token for `scope` (used when the challenge names none);
// `basic` ("Authorization: Basic ...") authenticates the request when credentials are known.
Result<std::string> fetch_token(const HttpClient& http, const Challenge& c, const std::string& scope,
                                const std::string& basic = "");

}  // namespace envrun::registry
