// envrun token create|list|revoke: the management API's tokens (DIR/api/tokens.json of the
// agent directory --root DIR, default /var/lib/envrun/agent; envrun-serve(8) TOKENS).
#include <cstdio>
#include <ctime>

#include "agent/api/tokens.hpp"
#include "cli/cli.hpp"

namespace envrun::cli {

namespace {

constexpr const char* kDefaultAgentRoot = "/var/lib/envrun/agent";

struct TokenFlags {
  std::string name, role, expires, format = "table";
  std::vector<std::string> bundles;
};

std::string expiry_text(int64_t t) {
  if (t == 0) return "never";
  std::time_t tt = std::time_t(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
  return buf;
}

Result<int> create(agent::api::TokenStore& store, const TokenFlags& f) {
  agent::api::NewToken t;
  t.name = f.name;
  auto role = agent::api::parse_role(f.role);
  if (!role) return Error::make(ErrorKind::Usage, "--role \"" + f.role + "\": want admin, operator, read-only or billing");
  t.role = *role;
  t.bundles = f.bundles;
  if (!f.expires.empty() && (t.ttl_s = agent::api::parse_ttl(f.expires)) <= 0)
    return Error::make(ErrorKind::Usage, "--expires \"" + f.expires + "\": want a duration like 24h, 30m, 7d");
  auto secret = ENVRUN_TRY(store.create(t));
  std::printf("%s\n", secret.c_str());  // shown once: only its hash is kept
  return 0;
}

Result<int> list(agent::api::TokenStore& store, const TokenFlags& f) {
  auto all = ENVRUN_TRY(store.list());
  if (f.format == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& t : all) arr.push_back(nlohmann::json::parse(agent::api::token_to_json_text(t)));
    std::printf("%s\n", arr.dump().c_str());
    return 0;
  }
  std::printf("%-20s %-10s %-20s %-22s %-22s %s\n", "NAME", "ROLE", "BUNDLES", "CREATED", "EXPIRES", "STATUS");
  int64_t now = std::time(nullptr);
  for (const auto& t : all) {
    std::string bundles;
    for (const auto& b : t.bundles) bundles += (bundles.empty() ? "" : ",") + b;
    std::string status = !t.revoked.empty() ? "revoked" : (t.expires && t.expires <= now) ? "expired" : "valid";
    std::printf("%-20s %-10s %-20s %-22s %-22s %s\n", t.name.c_str(), agent::api::role_name(t.role),
                bundles.empty() ? "*" : bundles.c_str(), t.created.c_str(), expiry_text(t.expires).c_str(), status.c_str());
  }
  return 0;
}

}  // namespace

void add_token(CLI::App& app, Globals& g) {
  static TokenFlags f;
  auto* root_opt = app.get_option("--root");
  auto* tok = app.add_subcommand("token", "management API tokens of the agent in --root (envrun-serve(8))");
  tok->require_subcommand(1);
  auto* c = tok->add_subcommand("create", "make a token and print its secret (once)");
  c->add_option("name", f.name, "token name")->required();
  c->add_option("--role", f.role, "admin, operator, read-only or billing")->required();
  c->add_option("--bundle", f.bundles, "limit the token to this bundle (repeatable)");
  c->add_option("--expires", f.expires, "lifetime (24h, 30m, 7d; default: never)");
  auto* l = tok->add_subcommand("list", "list tokens (never their secrets)");
  l->add_option("-f,--format", f.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* r = tok->add_subcommand("revoke", "revoke a token");
  r->add_option("name", f.name, "token name")->required();
  auto dir = [&g, root_opt] { return std::string(root_opt->count() ? g.root : kDefaultAgentRoot) + "/api"; };
  on_run(c, g, "token create", &f.name, [dir]() -> Result<int> {
    agent::api::TokenStore s(dir());
    return create(s, f);
  });
  on_run(l, g, "token list", nullptr, [dir]() -> Result<int> {
    agent::api::TokenStore s(dir());
    return list(s, f);
  });
  on_run(r, g, "token revoke", &f.name, [dir]() -> Result<int> {
    agent::api::TokenStore s(dir());
    ENVRUN_CHECK(s.revoke(f.name));
    return 0;
  });
}

}  // namespace envrun::cli
