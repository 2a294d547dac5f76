// RegistryClient: scheme choice, /v2/ probe, bearer token, authenticated GETs.
#include "bundle/registry_client.hpp"

#include <nlohmann/json.hpp>

#include "bundle/registry_auth.hpp"
#include "kernel/log.hpp"

namespace envrun::registry {

RegistryClient::RegistryClient(ImageRef ref, bool insecure) : ref_(std::move(ref)), http_(insecure) {}

std::string RegistryClient::url(const std::string& what) const {
  return scheme_ + "://" + ref_.registry + "/v2/" + ref_.repository + "/" + what;
}

std::vector<std::string> RegistryClient::auth_headers() const {
  if (!basic_.empty()) return {basic_};
  if (token_.empty()) return {};
  return {"Authorization: Bearer " + token_};
}

Result<void> RegistryClient::connect() {
  if (!creds_) {
    std::string file = auth_file(auth_file_);
    creds_ = ENVRUN_TRY(find_credentials(file, ref_.registry));
    if (creds_) log::debug("registry: credentials for " + ref_.registry + " from " + file);
  }
  auto probe = [&](const std::string& scheme) {
    log::debug("pull: probing " + scheme + "://" + ref_.registry + "/v2/");
    return http_.get(scheme + "://" + ref_.registry + "/v2/", {});
  };
  auto r = probe(scheme_);
  if (!r && http_.insecure()) {
    log::debug("pull: https failed (" + r.error().message + "), trying plain http (--insecure)");
    scheme_ = "http";
    r = probe(scheme_);
  }
  if (!r) {
    std::string hint = !http_.insecure() && r.error().message.find("SSL") != std::string::npos
                           ? " (a registry without TLS needs --insecure)" : "";
    return Error::make(ErrorKind::System, where() + ": cannot connect: " + r.error().message + hint);
  }
  if (r->status == 401) return authenticate(*r);
  if (r->status != 200 && r->status != 404)  // some registries answer 404 on /v2/ itself
    return Error::make(ErrorKind::Generic, where() + ": /v2/ answered " + describe_http_error(*r));
  return ok();
}

Result<void> RegistryClient::authenticate(const HttpResponse& resp) {
  auto c = parse_challenge(resp.header("www-authenticate"));
  if (c && c->scheme == "basic" && creds_) {
    basic_ = creds_->basic_header();
    return ok();
  }
  if (!c || c->scheme != "bearer")
    return Error::make(ErrorKind::Generic, where() + ": unauthorized (HTTP 401" +
                                               (c ? ", " + c->scheme + " authentication" : std::string()) +
                                               "); credentials are needed");
  // No repository (envrun login): a token without a scope proves the credentials.
  std::string scope = ref_.repository.empty() ? "" : "repository:" + ref_.repository + ":" + actions_;
  // The /v2/ challenge names no scope: ask for this repository's pull scope.
  c->params.erase("scope");
  auto tok = fetch_token(http_, *c, scope, creds_ ? creds_->basic_header() : "");
  if (!tok) return std::move(tok).error().with_context(where());
  token_ = *tok;
  log::debug("pull: got a bearer token for " + scope);
  return ok();
}

Result<HttpResponse> RegistryClient::get(const std::string& what, std::vector<std::string> headers, size_t max_body) {
  for (int attempt = 0;; ++attempt) {
    auto all = headers;
    for (auto& h : auth_headers()) all.push_back(h);
    auto r = http_.get(url(what), all, max_body);
    if (!r) return Error::make(ErrorKind::System, where() + ": " + r.error().message);
    if (r->status != 401 || attempt > 0) return r;
    // A token expired or the endpoint wants another scope: follow its challenge once.
    auto c = parse_challenge(r->header("www-authenticate"));
    if (!c || c->scheme != "bearer") return r;
    auto tok = fetch_token(http_, *c, "repository:" + ref_.repository + ":" + actions_,
                           creds_ ? creds_->basic_header() : "");
    if (!tok) return std::move(tok).error().with_context(where());
    token_ = *tok;
  }
}

std::string describe_http_error(const HttpResponse& r) {
  std::string s = "HTTP " + std::to_string(r.status);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty()) {
    const auto& e = j["errors"][0];
    if (e.contains("code") && e["code"].is_string()) s += " " + e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string()) s += ": " + e["message"].get<std::string>();
  }
  return s;
}

}  // namespace envrun::registry
