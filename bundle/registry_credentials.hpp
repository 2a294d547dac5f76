// Registry credentials in docker's auth.json format:
//   {"auths": {"127.0.0.1:5000": {"auth": "<base64 of user:password>"}}}
// `envrun login` writes them (mode 0600, written then renamed); pull and push read them.
// Where: --authfile, else $REGISTRY_AUTH_FILE, else /etc/envrun/auth.json for root and
// $XDG_CONFIG_HOME/envrun/auth.json (or ~/.config/envrun/auth.json) for others.
#pragma once
#include <optional>
#include <string>

#include "kernel/result.hpp"

namespace envrun::registry {

struct Credentials {
  std::string username;
  std::string password;
  // "Authorization: Basic <base64(user:password)>"
  std::string basic_header() const;
};

// The auth file used when none is named (ignores $REGISTRY_AUTH_FILE).
std::string default_auth_file();
// explicit_path, else $REGISTRY_AUTH_FILE, else default_auth_file().
std::string auth_file(const std::string& explicit_path = "");

// The registry's entry ("host:port"; docker's "https://host/v1/" style keys match too).
// nullopt when the file or the entry is absent; an unreadable or malformed file is an error.
Result<std::optional<Credentials>> find_credentials(const std::string& file, const std::string& registry);
// Add or replace the registry's entry, keeping the others; the file ends up 0600.
Result<void> store_credentials(const std::string& file, const std::string& registry, const Credentials& c);
// Remove the entry; false when there was none.
Result<bool> remove_credentials(const std::string& file, const std::string& registry);

std::string base64_encode(const std::string& in);
std::optional<std::string> base64_decode(const std::string& in);

}  // namespace envrun::registry
