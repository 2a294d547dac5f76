// /v1/instances: list, create, inspect, start, stop, kill, checkpoint, upgrade, delete;
// /v1/bundles/{name}/rollout: every running instance of a bundle upgraded in turn.
#include <algorithm>
#include <cctype>

#include "agent/api/api.hpp"
#include "agent/library.hpp"
#include "agent/upgrade.hpp"

namespace envrun::agent::api {

namespace {

Reply or_error(Result<nlohmann::json> r, int status, const std::string& what) {
  if (!r) return error_reply(r.error());
  return json_reply(std::move(*r), status, what);
}

Result<HealthCheck> health_of(const json& body) {
  HealthCheck h;
  auto it = body.find("health");
  if (it == body.end() || it->is_null()) return h;
  if (!it->is_object()) return Error::make(ErrorKind::Usage, "body: field \"health\": want an object");
  h.exec = ENVRUN_TRY(strings_field(*it, "exec"));
  h.http = ENVRUN_TRY(string_field(*it, "http", false));
  h.timeout_s = ENVRUN_TRY(int_field(*it, "timeout_s", 10));
  if (h.timeout_s <= 0 || h.timeout_s > 3600)
    return Error::make(ErrorKind::Usage, "body: field \"health.timeout_s\": want 1..3600");
  return h;
}

struct UpgradeAsk {
  int version = 0;
  UpgradeMode mode{};
  HealthCheck health;
};

Result<UpgradeAsk> upgrade_ask(const json& body) {
  UpgradeAsk a;
  a.version = ENVRUN_TRY(int_field(body, "version", 0));
  auto mode_text = ENVRUN_TRY(string_field(body, "mode", false));
  auto mode = parse_upgrade_mode(mode_text.empty() ? "auto" : mode_text);
  if (!mode) return Error::make(ErrorKind::Usage, "body: field \"mode\": " + mode.error().message);
  a.mode = *mode;
  a.health = ENVRUN_TRY(health_of(body));
  return a;
}

// One instance upgraded (under its lock): the answer's JSON and whether it upgraded.
Result<std::pair<json, bool>> upgrade_one(ApiContext& ctx, const std::string& id, const UpgradeAsk& a) {
  auto g = ctx.instances.lock(id);
  auto r = ENVRUN_TRY(upgrade_instance(ctx.opt.dir, id, a.version, a.mode, a.health,
                                       [&](const std::string& s) { ctx.log("upgrade " + id + ": " + s); }));
  json j{{"upgraded", r.upgraded}, {"rolled_back", r.rolled_back}, {"from_version", r.from_version},
         {"to_version", r.to_version}, {"mode_used", r.mode_used}, {"message", r.message},
         {"downtime_ms", r.downtime_ms}};
  if (auto inst = ctx.instances.get(id)) j["instance"] = *inst;
  return std::pair{std::move(j), r.upgraded};
}

Reply upgrade(ApiContext& ctx, Call& c) {
  const auto& id = c.params[0];
  auto a = upgrade_ask(c.body_json);
  if (!a) return error_reply(a.error());
  auto r = upgrade_one(ctx, id, *a);
  if (!r) return error_reply(r.error());
  int status = r->second ? 200 : 409;  // rolled back: the instance runs its old version
  return json_reply(r->first, status, "upgrade " + id + ": " + r->first["message"].get<std::string>());
}

// POST /v1/bundles/{name}/rollout: every running instance of the bundle upgraded in turn
// (sorted by id); the first that is not upgraded (rolled back, refused) stops the rollout
// unless "continue" is true: the rest stay on their version ("skipped").
Reply rollout(ApiContext& ctx, Call& c) {
  const auto& name = c.params[0];
  auto a = upgrade_ask(c.body_json);
  if (!a) return error_reply(a.error());
  auto cont = c.body_json.find("continue");
  if (cont != c.body_json.end() && !cont->is_boolean()) return error_reply(400, "body: field \"continue\": want a boolean");
  bool keep_going = cont != c.body_json.end() && cont->get<bool>();
  if (auto cur = ctx.instances.library().current(name); !cur) return error_reply(cur.error());
  std::vector<std::string> ids;
  for (auto& j : ctx.instances.list())
    if (j.value("bundle", "") == name && j.value("status", "") == "running") ids.push_back(j.value("id", ""));
  std::sort(ids.begin(), ids.end());
  json done = json::array(), skipped = json::array();
  bool all = true;
  for (const auto& id : ids) {
    if (!all && !keep_going) {
      skipped.push_back(id);
      continue;
    }
    auto r = upgrade_one(ctx, id, *a);
    json e = r ? r->first : json{{"upgraded", false}, {"message", r.error().message}};
    e["id"] = id;
    all = all && r && r->second;
    done.push_back(std::move(e));
  }
  json out{{"bundle", name}, {"instances", done}, {"skipped", skipped}, {"upgraded_all", all}};
  std::string what = "rollout " + name + ": " + std::to_string(done.size()) + " tried, " + std::to_string(skipped.size()) + " skipped";
  return json_reply(out, all ? 200 : 409, what);
}

}  // namespace

void add_instance_routes(Router& r, ApiContext& ctx) {
  auto& inst = ctx.instances;
  auto scope_of_id = [&inst](Call& c) { return inst.bundle_of(c.params[0]); };
  auto scope_of_body = [](Call& c) -> Result<std::string> {
    auto b = ENVRUN_TRY(string_field(c.body_json, "bundle", true));
    ENVRUN_CHECK(check_id("body: field \"bundle\"", b));
    return b;
  };
  r.add({"GET", "/v1/instances", Need::Read, false, nullptr, [&inst](Call& c) {
           json arr = json::array();
           for (auto& j : inst.list())
             if (sees_bundle(c.token.bundles, j["bundle"].get<std::string>())) arr.push_back(std::move(j));
           return json_reply(arr);
         }});
  r.add({"POST", "/v1/instances", Need::InstanceWrite, true, scope_of_body, [&inst](Call& c) {
           auto id = string_field(c.body_json, "id", true);
           if (!id) return error_reply(id.error());
           if (auto v = check_id("body: field \"id\"", *id); !v) return error_reply(v.error());
           auto version = int_field(c.body_json, "version", 0);
           if (!version) return error_reply(version.error());
           auto bundle = c.body_json["bundle"].get<std::string>();
           return or_error(inst.create(*id, bundle, *version), 201, "created " + *id);
         }});
  r.add({"GET", "/v1/instances/{id}", Need::Read, false, scope_of_id,
         [&inst](Call& c) { return or_error(inst.get(c.params[0]), 200, ""); }});
  r.add({"POST", "/v1/instances/{id}/start", Need::InstanceWrite, true, scope_of_id,
         [&inst](Call& c) { return or_error(inst.start(c.params[0]), 200, "started " + c.params[0]); }});
  r.add({"POST", "/v1/instances/{id}/stop", Need::InstanceWrite, true, scope_of_id, [&inst](Call& c) {
           auto t = int_field(c.body_json, "timeout_s", 10);
           if (!t) return error_reply(t.error());
           return or_error(inst.stop(c.params[0], std::clamp(*t, 0, 600)), 200, "stopped " + c.params[0]);
         }});
  r.add({"POST", "/v1/instances/{id}/kill", Need::InstanceWrite, true, scope_of_id, [&inst](Call& c) {
           auto sig = string_field(c.body_json, "signal", false);
           if (!sig) return error_reply(sig.error());
           std::string s = sig->empty() ? "TERM" : *sig;
           for (char ch : s)
             if (!std::isalnum(static_cast<unsigned char>(ch)))
               return error_reply(400, "body: field \"signal\": want a signal name or number");
           auto all = c.body_json.find("all");
           if (all != c.body_json.end() && !all->is_boolean()) return error_reply(400, "body: field \"all\": want a boolean");
           bool every = all != c.body_json.end() && all->get<bool>();
           return or_error(inst.kill(c.params[0], s, every), 200, "signal " + s + " to " + c.params[0]);
         }});
  r.add({"POST", "/v1/instances/{id}/checkpoint", Need::InstanceWrite, true, scope_of_id, [&inst](Call& c) {
           auto it = c.body_json.find("leave_running");
           if (it != c.body_json.end() && !it->is_boolean())
             return error_reply(400, "body: field \"leave_running\": want a boolean");
           bool leave = it == c.body_json.end() || it->get<bool>();
           return or_error(inst.checkpoint(c.params[0], leave), 200, "checkpointed " + c.params[0]);
         }});
  r.add({"POST", "/v1/instances/{id}/upgrade", Need::InstanceWrite, true, scope_of_id,
         [&ctx](Call& c) { return upgrade(ctx, c); }});
  r.add({"POST", "/v1/bundles/{name}/rollout", Need::InstanceWrite, true,
         [](Call& c) -> Result<std::string> {
           ENVRUN_CHECK(Library::validate_name(c.params[0]));
           return c.params[0];
         },
         [&ctx](Call& c) { return rollout(ctx, c); }});
  r.add({"DELETE", "/v1/instances/{id}", Need::InstanceWrite, false, scope_of_id, [&inst](Call& c) {
           bool force = c.query_value("force") == "1" || c.query_value("force") == "true";
           auto d = inst.remove(c.params[0], force);
           if (!d) return error_reply(d.error());
           return json_reply({{"id", c.params[0]}, {"deleted", true}}, 200, "deleted " + c.params[0]);
         }});
}

}  // namespace envrun::agent::api
