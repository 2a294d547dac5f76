// The API's request pipeline without HTTP (agent/api/router.hpp): tokens (unknown,
// expired, revoked), 404/405, path parameter validation before any lookup, roles and
// bundle limits, body parsing errors that name the problem, field helpers.
#include <catch2/catch.hpp>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "agent/api/router.hpp"
#include "agent/api/tokens.hpp"
#include "kernel/fs.hpp"

using namespace envrun::agent::api;
namespace fsys = std::filesystem;

namespace {

struct Fixture {
  std::string dir;
  TokenStore tokens;
  Router router;
  int handled = 0;
  std::string scoped_bundle = "web";
  Fixture() : dir(make_dir()), tokens(dir + "/api"), router(tokens) {
    auto ok = [this](Call& c) {
      ++handled;
      Reply r;
      r.body = {{"params", c.params}, {"body", c.body_json}};
      return r;
    };
    auto scope = [this](Call&) -> envrun::Result<std::string> { return scoped_bundle; };
    router.add({"GET", "/v1/instances", Need::Read, false, nullptr, ok});
    router.add({"POST", "/v1/instances", Need::InstanceWrite, true, nullptr, ok});
    router.add({"GET", "/v1/instances/{id}", Need::Read, false, scope, ok});
    router.add({"POST", "/v1/instances/{id}/stop", Need::InstanceWrite, true, scope, ok});
    router.add({"GET", "/v1/usage", Need::Usage, false, nullptr, ok});
    router.add({"GET", "/v1/tokens", Need::Admin, false, nullptr, ok});
  }
  ~Fixture() { fsys::remove_all(dir); }
  static std::string make_dir() {
    char t[] = "/tmp/envrun-unit-api.XXXXXX";
    return ::mkdtemp(t);
  }
  std::string token(const std::string& name, Role role, std::vector<std::string> bundles = {}, int64_t ttl = 0) {
    auto s = tokens.create({name, role, std::move(bundles), ttl});
    REQUIRE(s);
    return *s;
  }
  Reply call(const std::string& secret, const std::string& method, const std::string& path, const std::string& body = "") {
    Call c;
    c.method = method;
    c.path = path;
    c.authorization = secret.empty() ? "" : "Bearer " + secret;
    c.body = body;
    std::string name;
    return router.dispatch(c, name);
  }
};

}  // namespace

TEST_CASE("tokens: unknown, revoked and expired ones get 401", "[api]") {
  Fixture f;
  auto admin = f.token("admin", Role::Admin);
  CHECK(f.call("", "GET", "/v1/instances").status == 401);
  CHECK(f.call("envrun_" + std::string(64, '0'), "GET", "/v1/instances").status == 401);
  CHECK(f.call(admin, "GET", "/v1/instances").status == 200);
  REQUIRE(f.tokens.revoke("admin"));
  auto r = f.call(admin, "GET", "/v1/instances");
  CHECK(r.status == 401);
  CHECK(r.message.find("revoked") != std::string::npos);
  // An expired token: written with an expiry in the past.
  auto old = f.token("old", Role::Admin, {}, 1);
  auto all = f.tokens.list();
  REQUIRE(all);
  auto text = envrun::fs::read_file(f.tokens.file());
  REQUIRE(text);
  auto j = nlohmann::json::parse(*text);
  for (auto& t : j["tokens"])
    if (t["name"] == "old") t["expires"] = int64_t(std::time(nullptr)) - 5;
  REQUIRE(envrun::fs::atomic_write(f.tokens.file(), j.dump(), 0600));
  r = f.call(old, "GET", "/v1/instances");
  CHECK(r.status == 401);
  CHECK(r.message.find("expired") != std::string::npos);
  CHECK(f.handled == 1);
}

TEST_CASE("the secret is not stored, names are validated, live names are unique", "[api]") {
  Fixture f;
  auto s = f.token("a", Role::ReadOnly);
  auto text = envrun::fs::read_file(f.tokens.file());
  REQUIRE(text);
  CHECK(text->find(s) == std::string::npos);
  CHECK(text->find(s.substr(7)) == std::string::npos);
  CHECK(!f.tokens.create({"a", Role::Admin, {}, 0}));
  CHECK(!f.tokens.create({"../x", Role::Admin, {}, 0}));
  CHECK(!f.tokens.create({"ok", Role::Admin, {"../b"}, 0}));
  REQUIRE(f.tokens.revoke("a"));
  CHECK(f.tokens.create({"a", Role::Admin, {}, 0}));  // a revoked name can be used again
  CHECK((fsys::status(f.tokens.file()).permissions() & fsys::perms::all) == (fsys::perms::owner_read | fsys::perms::owner_write));
  CHECK(parse_ttl("24h") == 86400);
  CHECK(parse_ttl("7d") == 7 * 86400);
  CHECK(parse_ttl("90") == 90);
  CHECK(parse_ttl("soon") == -1);
  CHECK(parse_ttl("-5m") == -1);
}

TEST_CASE("routes: 404, 405, bad path parameters before any lookup", "[api]") {
  Fixture f;
  auto admin = f.token("admin", Role::Admin);
  CHECK(f.call(admin, "GET", "/v1/nothing").status == 404);
  CHECK(f.call(admin, "DELETE", "/v1/instances").status == 405);
  for (const char* p : {"/v1/instances/..", "/v1/instances/.", "/v1/instances/a b", "/v1/instances/x\\y"}) {
    auto r = f.call(admin, "GET", p);
    CHECK(r.status == 400);
    CHECK(r.message.find("path: id") != std::string::npos);
  }
  CHECK(f.call(admin, "GET", "/v1/instances/a/b").status == 404);
  CHECK(f.handled == 0);
  auto ok = f.call(admin, "GET", "/v1/instances/web1");
  REQUIRE(ok.status == 200);
  CHECK(ok.body["params"][0] == "web1");
}

TEST_CASE("roles and bundle limits: 403", "[api]") {
  Fixture f;
  auto ro = f.token("ro", Role::ReadOnly);
  auto bill = f.token("bill", Role::Billing);
  auto op = f.token("op", Role::Operator, {"web"});
  auto op2 = f.token("op2", Role::Operator, {"db"});
  CHECK(f.call(ro, "GET", "/v1/instances/x").status == 200);
  CHECK(f.call(ro, "POST", "/v1/instances/x/stop").status == 403);
  CHECK(f.call(ro, "POST", "/v1/instances", "{}").status == 403);
  CHECK(f.call(ro, "GET", "/v1/tokens").status == 403);
  CHECK(f.call(ro, "GET", "/v1/usage").status == 200);
  CHECK(f.call(bill, "GET", "/v1/instances").status == 403);
  CHECK(f.call(bill, "GET", "/v1/usage").status == 200);
  CHECK(f.call(op, "POST", "/v1/instances/x/stop").status == 200);
  CHECK(f.call(op, "GET", "/v1/tokens").status == 403);
  CHECK(f.call(op2, "POST", "/v1/instances/x/stop").status == 403);
  CHECK(f.call(op2, "GET", "/v1/instances/x").status == 403);
  f.scoped_bundle = "";  // an instance of no library bundle: only unlimited tokens act on it
  CHECK(f.call(op, "POST", "/v1/instances/x/stop").status == 403);
  CHECK(f.call(op, "GET", "/v1/instances/x").status == 200);
  CHECK(role_allows(Role::Admin, Need::BundleWrite));
  CHECK(!role_allows(Role::Operator, Need::BundleWrite));
  CHECK(!parse_role("root"));
}

TEST_CASE("bodies: malformed JSON, not an object, fields named", "[api]") {
  Fixture f;
  auto admin = f.token("admin", Role::Admin);
  auto r = f.call(admin, "POST", "/v1/instances", "{\"id\": ");
  CHECK(r.status == 400);
  CHECK(r.message.find("malformed JSON at byte") != std::string::npos);
  r = f.call(admin, "POST", "/v1/instances", "[1]");
  CHECK(r.status == 400);
  CHECK(r.message.find("want a JSON object, got array") != std::string::npos);
  r = f.call(admin, "POST", "/v1/instances", "");
  CHECK(r.status == 200);  // an empty body is {}
  CHECK(f.handled == 1);
  nlohmann::json j{{"id", 7}, {"tags", {"a", 1}}};
  auto id = string_field(j, "id", true);
  REQUIRE(!id);
  CHECK(id.error().message == "body: field \"id\": want a string");
  auto missing = string_field(j, "bundle", true);
  REQUIRE(!missing);
  CHECK(missing.error().message == "body: field \"bundle\" is required");
  CHECK(!strings_field(j, "tags"));
  CHECK(int_field(j, "version", 3).value() == 3);
  CHECK(int_field(j, "id", 0).value() == 7);
}
