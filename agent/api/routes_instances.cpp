// /v1/instances: list, create, inspect, start, stop, kill, checkpoint, upgrade, delete.
#include <algorithm>
#include <cctype>

#include "agent/api/api.hpp"
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

Reply upgrade(ApiContext& ctx, Call& c) {
  const auto& id = c.params[0];
  auto version = int_field(c.body_json, "version", 0);
  if (!version) return error_reply(version.error());
  auto mode_text = string_field(c.body_json, "mode", false);
  if (!mode_text) return error_reply(mode_text.error());
  auto mode = parse_upgrade_mode(mode_text->empty() ? "auto" : *mode_text);
  if (!mode) return error_reply(400, "body: field \"mode\": " + mode.error().message);
  auto health = health_of(c.body_json);
  if (!health) return error_reply(health.error());
  auto g = ctx.instances.lock(id);
  auto r = upgrade_instance(ctx.opt.dir, id, *version, *mode, *health,
                            [&](const std::string& s) { ctx.log("upgrade " + id + ": " + s); });
  if (!r) return error_reply(r.error());
  json j{{"upgraded", r->upgraded}, {"rolled_back", r->rolled_back}, {"from_version", r->from_version},
         {"to_version", r->to_version}, {"mode_used", r->mode_used}, {"message", r->message},
         {"downtime_ms", r->downtime_ms}};
  if (auto inst = ctx.instances.get(id)) j["instance"] = *inst;
  int status = r->upgraded ? 200 : 409;  // rolled back: the instance runs its old version
  return json_reply(j, status, "upgrade " + id + ": " + r->message);
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
  r.add({"DELETE", "/v1/instances/{id}", Need::InstanceWrite, false, scope_of_id, [&inst](Call& c) {
           bool force = c.query_value("force") == "1" || c.query_value("force") == "true";
           auto d = inst.remove(c.params[0], force);
           if (!d) return error_reply(d.error());
           return json_reply({{"id", c.params[0]}, {"deleted", true}}, 200, "deleted " + c.params[0]);
         }});
}

}  // namespace envrun::agent::api
