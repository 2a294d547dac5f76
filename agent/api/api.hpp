// The management API of `envrun serve` (issue 8; envrun-serve(8), doc/openapi.yaml):
// what the routes share, and the functions that add each group of routes to a Router.
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "agent/api/audit.hpp"
#include "agent/api/instances.hpp"
#include "agent/api/router.hpp"
#include "agent/api/tokens.hpp"

namespace envrun::agent::api {

struct ApiOptions {
  std::string dir;               // the agent's DIR
  std::string envrun;            // the envrun binary run for changes
  std::string pull_helper;       // envrun-pull, for POST /v1/bundles {pull: REF}
  std::string ledger;            // the billing ledger for /v1/usage and /v1/billing
  std::function<void(const std::string&)> log;
  std::string plan;              // the pricing plan for /v1/billing ("": prices 0)
};

struct ApiContext {
  explicit ApiContext(ApiOptions o)
      : opt(std::move(o)), tokens(opt.dir + "/api"), instances(opt.dir, opt.envrun) {}
  ApiOptions opt;
  TokenStore tokens;
  std::unique_ptr<AuditLog> audit;
  Instances instances;
  std::mutex library_mu;         // one library change at a time
  void log(const std::string& s) const { if (opt.log) opt.log(s); }
};

void add_instance_routes(Router& r, ApiContext& ctx);
void add_bundle_routes(Router& r, ApiContext& ctx);
void add_admin_routes(Router& r, ApiContext& ctx);  // tokens, audit, usage

// Every route, in the order envrun-serve(8) lists them.
inline void add_all_routes(Router& r, ApiContext& ctx) {
  add_bundle_routes(r, ctx);
  add_instance_routes(r, ctx);
  add_admin_routes(r, ctx);
}

// A Reply of `j` with `status`, audited as `message`.
inline Reply json_reply(nlohmann::json j, int status = 200, std::string message = "") {
  Reply r;
  r.status = status;
  r.body = std::move(j);
  r.message = std::move(message);
  return r;
}

}  // namespace envrun::agent::api
