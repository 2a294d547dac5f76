// /v1/tokens (admin), /v1/audit (admin), /v1/usage (billing, read-only, operator, admin).
#include <ctime>

#include "agent/api/api.hpp"
#include "billing/export.hpp"
#include "billing/ledger.hpp"
#include "billing/metrics.hpp"
#include "kernel/fs.hpp"

namespace envrun::agent::api {

namespace {

// "2026-11-26T00:00:00Z" or milliseconds since the epoch.
Result<int64_t> time_param(const std::string& name, const std::string& v, int64_t dflt) {
  if (v.empty()) return dflt;
  if (v.find_first_not_of("0123456789") == std::string::npos && v.size() < 19) return std::stoll(v);
  struct tm tm{};
  const char* rest = ::strptime(v.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest || (std::string(rest) != "Z" && std::string(rest) != "+00:00"))
    return Error::make(ErrorKind::Usage, "query: " + name + " \"" + v + "\": want YYYY-MM-DDTHH:MM:SSZ or epoch milliseconds");
  return int64_t(::timegm(&tm)) * 1000;
}

// The query of /v1/usage and /v1/billing: [from, to) (default: all until now) and an
// optional bundle.
struct Window {
  int64_t from = 0, to = 0;
  std::string bundle;
};

Result<Window> window_of(const Call& c) {
  Window w;
  w.from = ENVRUN_TRY(time_param("from", c.query_value("from"), 0));
  w.to = ENVRUN_TRY(time_param("to", c.query_value("to"), int64_t(std::time(nullptr)) * 1000 + 1000));
  if (w.to <= w.from) return Error::make(ErrorKind::Usage, "query: \"to\" must be after \"from\"");
  w.bundle = c.query_value("bundle");
  if (!w.bundle.empty()) ENVRUN_CHECK(check_id("query: bundle", w.bundle));
  return w;
}

// The ledger, or nullopt when there is none yet (nothing was metered: an empty answer).
Result<std::optional<billing::Ledger>> open_ledger(const ApiContext& ctx) {
  if (!fs::exists(ctx.opt.ledger)) return std::optional<billing::Ledger>{};
  auto l = billing::Ledger::open(ctx.opt.ledger);
  if (!l) return Error::make(ErrorKind::System, "ledger " + ctx.opt.ledger + ": " + l.error().message);
  return std::optional<billing::Ledger>(std::move(*l));
}

Reply usage(const ApiContext& ctx, Call& c) {
  auto w = window_of(c);
  if (!w) return error_reply(w.error());
  const std::string& want = w->bundle;
  json out{{"from_ms", w->from}, {"to_ms", w->to}, {"bundles", json::array()}};
  auto ledger = open_ledger(ctx);
  if (!ledger) return error_reply(500, ledger.error().message);
  if (!*ledger) return json_reply(out);
  auto rows = (*ledger)->window_usage(w->from, w->to);
  if (!rows) return error_reply(500, "ledger " + ctx.opt.ledger + ": " + rows.error().message);
  std::map<std::string, json> per;
  for (const auto& u : *rows) {
    const auto& b = u.instance.bundle;
    if ((!want.empty() && b != want) || !sees_bundle(c.token.bundles, b)) continue;
    auto& e = per[b];
    if (e.is_null()) e = {{"bundle", b}, {"instances", json::array()}, {"metrics", json::object()}};
    e["instances"].push_back(u.instance.instance);
    for (const auto& m : u.metrics) {
      const auto& inf = billing::info(m.metric);
      std::string name(inf.name);
      double prev = e["metrics"].contains(name) ? e["metrics"][name]["quantity"].get<double>() : 0.0;
      double q = inf.aggregation == billing::Aggregation::Sum ? prev + m.quantity : std::max(prev, m.quantity);
      e["metrics"][name] = {{"quantity", q}, {"unit", std::string(inf.unit)}};
    }
  }
  for (auto& [b, e] : per) out["bundles"].push_back(std::move(e));
  return json_reply(out);
}

// GET /v1/billing: the window priced by the agent's plan (--plan), as `envrun billing export
// --format json` gives it: one row per bundle and metric (FOCUS-style columns), only the
// bundles the token sees.
Reply billing_rows(const ApiContext& ctx, Call& c) {
  auto w = window_of(c);
  if (!w) return error_reply(w.error());
  const std::string& want = w->bundle;
  std::optional<billing::Plan> plan;
  if (!ctx.opt.plan.empty()) {
    auto p = billing::load_plan(ctx.opt.plan);
    if (!p) return error_reply(500, "plan " + ctx.opt.plan + ": " + p.error().message);
    plan = std::move(*p);
  }
  json out{{"from_ms", w->from}, {"to_ms", w->to}, {"currency", plan ? plan->currency : ""}, {"rows", json::array()}};
  auto ledger = open_ledger(ctx);
  if (!ledger) return error_reply(500, ledger.error().message);
  if (!*ledger) return json_reply(out);
  auto report = billing::build_export(**ledger, w->from, w->to, plan ? &*plan : nullptr);
  if (!report) return error_reply(500, "ledger " + ctx.opt.ledger + ": " + report.error().message);
  auto rows = json::parse(billing::format_export(*report, billing::ExportFormat::Json), nullptr, false);
  if (rows.is_discarded() || !rows.is_array()) return error_reply(500, "billing export: not a JSON array");
  for (auto& r : rows) {
    std::string b = r.value("ResourceName", "");
    if ((!want.empty() && b != want) || !sees_bundle(c.token.bundles, b)) continue;
    out["rows"].push_back(std::move(r));
  }
  return json_reply(out);
}

Reply create_token(ApiContext& ctx, Call& c) {
  NewToken t;
  auto name = string_field(c.body_json, "name", true);
  if (!name) return error_reply(name.error());
  t.name = *name;
  auto role = string_field(c.body_json, "role", true);
  if (!role) return error_reply(role.error());
  auto r = parse_role(*role);
  if (!r) return error_reply(400, "body: field \"role\": want admin, operator, read-only or billing");
  t.role = *r;
  auto bundles = strings_field(c.body_json, "bundles");
  if (!bundles) return error_reply(bundles.error());
  t.bundles = *bundles;
  auto exp = string_field(c.body_json, "expires", false);
  if (!exp) return error_reply(exp.error());
  if (!exp->empty() && (t.ttl_s = parse_ttl(*exp)) <= 0)
    return error_reply(400, "body: field \"expires\": want a duration like 24h, 30m, 7d");
  auto secret = ctx.tokens.create(t);
  if (!secret) return error_reply(secret.error());
  return json_reply({{"name", t.name}, {"role", role_name(t.role)}, {"bundles", t.bundles}, {"token", *secret}},
                    201, "created token " + t.name);
}

}  // namespace

void add_admin_routes(Router& r, ApiContext& ctx) {
  r.add({"GET", "/v1/usage", Need::Usage, false, nullptr, [&ctx](Call& c) { return usage(ctx, c); }});
  r.add({"GET", "/v1/billing", Need::Usage, false, nullptr, [&ctx](Call& c) { return billing_rows(ctx, c); }});
  r.add({"GET", "/v1/audit", Need::Admin, false, nullptr, [&ctx](Call& c) {
           std::string l = c.query_value("limit", "100");
           if (l.empty() || l.size() > 6 || l.find_first_not_of("0123456789") != std::string::npos)
             return error_reply(400, "query: limit \"" + l + "\": want 1..999999");
           auto lines = ctx.audit->tail(size_t(std::stoul(l)));
           if (!lines) return error_reply(lines.error());
           json arr = json::array();
           for (const auto& s : *lines) arr.push_back(json::parse(s, nullptr, false));
           return json_reply(arr);
         }});
  r.add({"GET", "/v1/tokens", Need::Admin, false, nullptr, [&ctx](Call&) {
           auto all = ctx.tokens.list();
           if (!all) return error_reply(all.error());
           json arr = json::array();
           for (const auto& t : *all) arr.push_back(json::parse(token_to_json_text(t)));
           return json_reply(arr);
         }});
  r.add({"POST", "/v1/tokens", Need::Admin, true, nullptr, [&ctx](Call& c) { return create_token(ctx, c); }});
  r.add({"DELETE", "/v1/tokens/{name}", Need::Admin, false, nullptr, [&ctx](Call& c) {
           auto v = ctx.tokens.revoke(c.params[0]);
           if (!v) return error_reply(v.error());
           return json_reply({{"name", c.params[0]}, {"revoked", true}}, 200, "revoked token " + c.params[0]);
         }});
}

}  // namespace envrun::agent::api
