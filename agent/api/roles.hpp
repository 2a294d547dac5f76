// Roles of API tokens and what each may do (envrun-serve(8) ROLES).
//   admin      everything
//   operator   instance operations (create/start/stop/kill/delete/checkpoint/upgrade) on its
//              bundles (all when the token lists none); reads everything but tokens and audit
//   read-only  every GET except tokens and audit
//   billing    GET /v1/usage only
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace envrun::agent::api {

enum class Role { Admin, Operator, ReadOnly, Billing };

std::optional<Role> parse_role(std::string_view s);
const char* role_name(Role r);

// What a route needs. Bundle-scoped needs are checked against the token's bundle list.
enum class Need {
  Read,          // GET of instances, bundles (bundle-scoped when the route names one)
  InstanceWrite, // instance operations (bundle-scoped)
  BundleWrite,   // add/change/publish/remove bundles (bundle-scoped)
  Usage,         // GET /v1/usage
  Admin,         // tokens, audit
};

// Whether `role` may do `need` at all (403 before anything is looked up).
bool role_allows(Role role, Need need);
// Whether a token limited to `bundles` (none: all) may do `need` on `bundle` ("" when the
// route names no bundle, or the instance runs from no library bundle).
bool scope_allows(const std::vector<std::string>& bundles, Need need, const std::string& bundle);

// Whether a token limited to `bundles` may see `bundle` (lists are filtered with it).
bool sees_bundle(const std::vector<std::string>& bundles, const std::string& bundle);

}  // namespace envrun::agent::api
