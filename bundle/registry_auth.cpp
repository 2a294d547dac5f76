// Bearer challenge parsing and the anonymous token request.
#include "bundle/registry_auth.hpp"

#include <curl/curl.h>

#include <cctype>
#include <nlohmann/json.hpp>

namespace envrun::registry {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), int(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

}  // namespace

std::optional<Challenge> parse_challenge(std::string_view h) {
  size_t i = 0;
  auto skip_ws = [&] { while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i; };
  skip_ws();
  size_t b = i;
  while (i < h.size() && h[i] != ' ') ++i;
  if (i == b) return std::nullopt;
  Challenge c{lower(std::string(h.substr(b, i - b))), {}};
  while (i < h.size()) {
    skip_ws();
    size_t k = i;
    while (i < h.size() && h[i] != '=' && h[i] != ',') ++i;
    if (i >= h.size() || h[i] != '=') return std::nullopt;
    std::string key = lower(std::string(h.substr(k, i - k)));
    ++i;
    std::string val;
    if (i < h.size() && h[i] == '"') {
      for (++i; i < h.size() && h[i] != '"'; ++i) {
        if (h[i] == '\\' && i + 1 < h.size()) ++i;
        val += h[i];
      }
      if (i >= h.size()) return std::nullopt;  // unterminated quote
      ++i;
    } else {
      size_t v = i;
      while (i < h.size() && h[i] != ',') ++i;
      val = std::string(h.substr(v, i - v));
      while (!val.empty() && val.back() == ' ') val.pop_back();
    }
    c.params[key] = val;
    skip_ws();
    if (i < h.size() && h[i] == ',') ++i;
  }
  return c;
}

Result<std::string> fetch_token(const HttpClient& http, const Challenge& c, const std::string& scope,
                                const std::string& basic) {
  auto realm = c.params.find("realm");
  if (realm == c.params.end() || realm->second.empty())
    return Error::make(ErrorKind::Generic, "unauthorized: the bearer challenge names no realm");
  std::string url = realm->second;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  if (auto s = c.params.find("service"); s != c.params.end()) {
    url += sep + std::string("service=") + escape(s->second);
    sep = '&';
  }
  auto sc = c.params.find("scope");
  std::string want = sc != c.params.end() && !sc->second.empty() ? sc->second : scope;
  if (!want.empty()) url += sep + std::string("scope=") + escape(want);
  std::vector<std::string> hdrs{"Accept: application/json"};
  if (!basic.empty()) hdrs.push_back(basic);
  auto r = http.get(url, hdrs);
  if (!r) return std::move(r).error().with_context("token server " + realm->second);
  if ((r->status == 401 || r->status == 403) && !basic.empty())
    return Error::make(ErrorKind::Generic, "unauthorized: the token server " + realm->second + " refused the credentials (HTTP " +
                                               std::to_string(r->status) + "): wrong user name or password");
  if (r->status == 401 || r->status == 403)
    return Error::make(ErrorKind::Generic, "unauthorized: the token server " + realm->second + " refused an anonymous token (HTTP " +
                                               std::to_string(r->status) + "); credentials are needed");
  if (r->status != 200)
    return Error::make(ErrorKind::Generic, "token server " + realm->second + ": HTTP " + std::to_string(r->status));
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_object()) {
    for (const char* k : {"token", "access_token"})
      if (j.contains(k) && j[k].is_string() && !j[k].get<std::string>().empty()) return j[k].get<std::string>();
  }
  return Error::make(ErrorKind::Generic, "token server " + realm->second + ": the answer holds no token");
}

}  // namespace envrun::registry
