// The role table.
#include "agent/api/roles.hpp"

#include <algorithm>

namespace envrun::agent::api {

std::optional<Role> parse_role(std::string_view s) {
  if (s == "admin") return Role::Admin;
  if (s == "operator") return Role::Operator;
  if (s == "read-only") return Role::ReadOnly;
  if (s == "billing") return Role::Billing;
  return std::nullopt;
}

const char* role_name(Role r) {
  switch (r) {
    case Role::Admin: return "admin";
    case Role::Operator: return "operator";
    case Role::ReadOnly: return "read-only";
    case Role::Billing: return "billing";
  }
  return "?";
}

bool sees_bundle(const std::vector<std::string>& bundles, const std::string& bundle) {
  return bundles.empty() || std::find(bundles.begin(), bundles.end(), bundle) != bundles.end();
}

bool scope_allows(const std::vector<std::string>& bundles, Need need, const std::string& bundle) {
  if (bundles.empty() || need == Need::Usage || need == Need::Admin) return true;
  // A bundle-limited token may not act on what belongs to no bundle of its list.
  if (bundle.empty()) return need == Need::Read;
  return sees_bundle(bundles, bundle);
}

bool role_allows(Role role, Need need) {
  switch (role) {
    case Role::Admin: return true;
    case Role::Operator: return need != Need::Admin && need != Need::BundleWrite;
    case Role::ReadOnly: return need == Need::Read || need == Need::Usage;
    case Role::Billing: return need == Need::Usage;
  }
  return false;
}

}  // namespace envrun::agent::api
