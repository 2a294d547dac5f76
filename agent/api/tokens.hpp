// API tokens: DIR/api/tokens.json (mode 0600, directory 0700). A token's secret is shown
// once, when it is made; the file keeps its SHA-256 only. The running agent re-reads the
// file when it changes, so `envrun token create|revoke` act at once.
//
//   {"tokens": [{"name": "ci", "role": "operator", "bundles": ["web"], "sha256": "<hex>",
//                "created": "2026-...Z", "expires": 1790000000 | 0, "revoked": "" | "2026-...Z"}]}
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "agent/api/roles.hpp"
#include "kernel/result.hpp"

namespace envrun::agent::api {

struct Token {
  std::string name;
  Role role = Role::ReadOnly;
  std::vector<std::string> bundles;  // empty: every bundle
  std::string sha256;                // of the secret, lower-case hex
  std::string created;               // RFC 3339
  int64_t expires = 0;               // unix seconds, 0 = never
  std::string revoked;               // RFC 3339 when revoked, else ""
};

struct NewToken {
  std::string name;
  Role role = Role::ReadOnly;
  std::vector<std::string> bundles;
  int64_t ttl_s = 0;  // 0 = never expires
};

// "24h", "30m", "7d", "90s", "3600" (seconds) -> seconds; -1 when malformed.
int64_t parse_ttl(const std::string& s);

class TokenStore {
 public:
  explicit TokenStore(std::string api_dir);  // DIR/api
  std::string file() const { return dir_ + "/tokens.json"; }

  Result<std::vector<Token>> list() const;
  // Returns the secret ("envrun_" + 64 hex digits). A live token of that name: State error;
  // a revoked one is replaced.
  Result<std::string> create(const NewToken& t);
  Result<void> revoke(const std::string& name);
  // The token whose secret this is. Unknown, expired or revoked: an Error (message says
  // which; the API answers 401 to all).
  Result<Token> authenticate(const std::string& secret);

 private:
  Result<std::vector<Token>> read_locked() const;
  Result<void> write_locked(const std::vector<Token>& all) const;
  std::string dir_;
  std::mutex mu_;
  std::vector<Token> cache_;
  int64_t cache_mtime_ns_ = -1;
  uint64_t cache_ino_ = 0;
};

std::string token_to_json_text(const Token& t);  // without the hash, for listings

}  // namespace envrun::agent::api
