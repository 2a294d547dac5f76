// The API's route table and the order every request goes through (no HTTP library here,
// so that unit tests drive it directly):
//   1. the bearer token (401: none, unknown, expired, revoked)
//   2. the route (404: no such path, 405: path known, method not)
//   3. path parameters ({id}, {name}) validated: 400, nothing is looked up with a bad one
//   4. the role (403), then the bundle the call acts on against the token's bundles (403)
//   5. the JSON body of routes that take one (400 naming the problem)
//   6. the handler
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/api/roles.hpp"
#include "agent/api/tokens.hpp"
#include "kernel/result.hpp"

namespace envrun::agent::api {

using nlohmann::json;

struct Call {
  std::string method, path, remote;
  std::map<std::string, std::string> query;
  std::string authorization;         // the Authorization header
  std::string body;                  // raw request body
  std::vector<std::string> params;   // path parameters, in pattern order
  json body_json = json::object();   // the parsed body (routes that take one)
  Token token;                       // who asks (after step 1)
  std::string query_value(const std::string& k, const std::string& dflt = "") const {
    auto it = query.find(k);
    return it == query.end() ? dflt : it->second;
  }
};

struct Reply {
  int status = 200;
  json body;                 // sent as JSON unless `raw` is set
  std::string raw, content_type;
  std::string message;       // for the audit log ("" -> the error text or "ok")
};

Reply error_reply(int status, const std::string& message);
// The HTTP status for an Error: Usage/Config 400, NotFound 404, State 409, else 500.
Reply error_reply(const Error& e);
int status_of(const Error& e);

struct Route {
  std::string method;
  std::string pattern;       // "/v1/instances/{id}/start"
  Need need = Need::Read;
  bool takes_body = false;
  // The bundle the call acts on ("" for none); an error ends the call (e.g. 404).
  std::function<Result<std::string>(Call&)> scope;
  std::function<Reply(Call&)> handler;
};

class Router {
 public:
  explicit Router(TokenStore& tokens) : tokens_(tokens) {}
  void add(Route r) { routes_.push_back(std::move(r)); }
  const std::vector<Route>& routes() const { return routes_; }
  // Runs steps 1-6. token_name gets the authenticated token's name ("" before step 1 passes).
  Reply dispatch(Call& c, std::string& token_name) const;

 private:
  TokenStore& tokens_;
  std::vector<Route> routes_;
};

// Body fields, errors naming the field (ErrorKind::Usage -> 400).
Result<std::string> string_field(const json& j, const std::string& name, bool required);
Result<int> int_field(const json& j, const std::string& name, int dflt);
Result<std::vector<std::string>> strings_field(const json& j, const std::string& name);
// Validate a path or body id/name (runtime::StateStore::validate_id rules), naming `what`.
Result<void> check_id(const std::string& what, const std::string& v);

}  // namespace envrun::agent::api
