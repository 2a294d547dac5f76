// envrun intercept: compile | check | explain (cmd_intercept_explain.cpp) an interception
// database, and `envrun intercept ID enable|disable NAME... | status [--json]` on a live container
// (--json: the chain and the meter's counters of the control page, intercept/control.h).
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <iterator>

#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "cli/intercept_source.hpp"
#include "intercept/control.h"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "runtime/intercept_control.hpp"

namespace envrun::cli {

void add_intercept_explain(CLI::App& parent, Globals& g);  // cmd_intercept_explain.cpp

namespace {

std::string count(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::string summary(const bundle::InterceptDb& db) {
  std::string chain;
  for (const auto& c : db.interceptors) chain += (chain.empty() ? "" : ", ") + c.name + (c.enabled ? "" : " (off)");
  return count(db.files.size(), "file rule") + ", " + count(db.env.size(), "env rule") + ", " +
         count(db.net.size(), "network rule") + ", chain: " + (chain.empty() ? "(empty)" : chain);
}

std::string origin(const InterceptModel& m) {
  return m.yaml.empty() ? "(no intercept.yaml in " + m.vars.bundle + ": default database)" : "(from " + m.yaml + ")";
}

void add_compile(CLI::App& parent, Globals& g) {
  static InterceptSource src;
  static std::string out = "intercept.db";
  auto* sub = parent.add_subcommand("compile", "compile a bundle's intercept.yaml (or the file given) into a binary intercept.db");
  sub->add_option("bundle_or_yaml", src.arg, "bundle directory or intercept.yaml")->required();
  sub->add_option("-o,--output", out, "the database to write")->capture_default_str();
  sub->add_option("--id", src.id, "value of ${ID}")->capture_default_str();
  sub->add_option("--state", src.state_override, "value of ${STATE} (default: <root>/<id>/intercept, as create uses)");
  on_run(sub, g, "intercept compile", nullptr, [&g]() -> Result<int> {
    src.root = g.root;
    InterceptModel m = ENVRUN_TRY(load_intercept_model(src));
    std::string bytes = ENVRUN_TRY(compile_intercept_model(m));
    ENVRUN_CHECK(fs::atomic_write(out, bytes, 0644));
    std::printf("%s: %s, %zu bytes %s\n", out.c_str(), summary(m.db).c_str(), bytes.size(), origin(m).c_str());
    return 0;
  });
}

void add_check(CLI::App& parent, Globals& g) {
  static InterceptSource src;
  auto* sub = parent.add_subcommand("check", "validate a bundle's intercept.yaml (or the file given); exit 3 when it is invalid");
  sub->add_option("bundle_or_yaml", src.arg, "bundle directory or intercept.yaml")->required();
  sub->add_option("--id", src.id, "value of ${ID}")->capture_default_str();
  sub->add_option("--state", src.state_override, "value of ${STATE} (default: <root>/<id>/intercept, as create uses)");
  on_run(sub, g, "intercept check", nullptr, [&g]() -> Result<int> {
    src.root = g.root;
    InterceptModel m = ENVRUN_TRY(load_intercept_model(src));
    ENVRUN_CHECK(compile_intercept_model(m));
    std::printf("ok: %s %s\n", summary(m.db).c_str(), origin(m).c_str());
    return 0;
  });
}

void print_chain(const std::vector<runtime::InterceptorStatus>& chain) {
  for (size_t i = 0; i < chain.size(); ++i) {
    std::string opts;
    for (const auto& [k, v] : chain[i].options) opts += (opts.empty() ? "" : ",") + k + "=" + v;
    std::string line = std::to_string(i + 1) + " " + chain[i].name;
    line.resize(std::max<size_t>(line.size() + 1, 13), ' ');
    line += chain[i].enabled ? "on" : "off";
    if (!opts.empty()) line.resize(std::max<size_t>(line.size() + 1, 17), ' '), line += opts;
    std::printf("%s\n", line.c_str());
  }
}

// The meter's counters by name, in intercept/control.h's order (ictl::Counter).
constexpr const char* kCounterNames[] = {
    "opens", "open_failures", "redirected", "denied", "execs", "connects", "accepts", "binds", "ports_mapped",
    "bytes_read", "bytes_written", "connections_open", "connections_peak", "processes_started",
    "net_bytes_received", "net_bytes_sent", "transactions", "distinct_peers", "peers_table_full"};
static_assert(std::size(kCounterNames) == ictl::kCounterCount, "a name for every counter of intercept/control.h");

// A snapshot of the counters of a control page file (little-endian 64-bit words).
Result<nlohmann::json> read_counters(const std::string& path) {
  std::string bytes = ENVRUN_TRY(fs::read_file(path));
  constexpr size_t first = offsetof(ictl::ControlPage, counters);
  if (bytes.size() < first + ictl::kCounterCount * sizeof(uint64_t))
    return Error::make(ErrorKind::State, path + ": " + std::to_string(bytes.size()) + " bytes, too short for the counters");
  nlohmann::json out = nlohmann::json::object();
  for (uint32_t i = 0; i < ictl::kCounterCount; ++i) {
    uint64_t v;
    std::memcpy(&v, bytes.data() + first + i * sizeof v, sizeof v);
    out[kCounterNames[i]] = v;
  }
  return out;
}

Result<int> print_status_json(const runtime::StateStore& store, const std::string& id) {
  auto chain = ENVRUN_TRY(runtime::intercept_chain(store, id));
  nlohmann::json doc = {{"id", id}, {"chain", nlohmann::json::array()}};
  for (const auto& c : chain) {
    nlohmann::json opts = nlohmann::json::object();
    for (const auto& [k, v] : c.options) opts[k] = v;
    doc["chain"].push_back({{"name", c.name}, {"enabled", c.enabled}, {"options", opts}});
  }
  doc["counters"] = ENVRUN_TRY(read_counters(store.dir(id) + "/" + runtime::kInterceptCtlName));
  std::printf("%s\n", doc.dump(2).c_str());
  return 0;
}

// `envrun intercept ID ACTION [NAME...]`.
struct ControlArgs {
  std::string id, action;
  std::vector<std::string> names;
  bool json = false;  // status --json
};

Result<int> control(const Globals& g, const ControlArgs& a) {
  const char* usage =
      "give a subcommand (compile, check, explain) or ID enable|disable NAME..., ID set NAME KEY=VALUE..., or ID status";
  if (a.id.empty()) return Error::make(ErrorKind::Usage, usage);
  if (a.action.empty()) return Error::make(ErrorKind::Usage, "no action for " + a.id + ": " + usage);
  auto store = g.store();
  if (a.action == "status") {
    if (!a.names.empty()) return Error::make(ErrorKind::Usage, "status takes no names");
    if (a.json) return print_status_json(store, a.id);
    print_chain(ENVRUN_TRY(runtime::intercept_chain(store, a.id)));
    return 0;
  }
  if (a.action == "set") {  // ID set NAME KEY=VALUE...
    if (a.names.size() < 2) return Error::make(ErrorKind::Usage, "set needs an interceptor name and KEY=VALUE");
    std::vector<std::string> kv(a.names.begin() + 1, a.names.end());
    print_chain(ENVRUN_TRY(runtime::intercept_configure(store, a.id, a.names[0], kv)));
    return 0;
  }
  if (a.action != "enable" && a.action != "disable")
    return Error::make(ErrorKind::Usage, "unknown action \"" + a.action + "\" (enable, disable, set, status)");
  if (a.names.empty()) return Error::make(ErrorKind::Usage, a.action + " needs interceptor names");
  std::vector<std::string> none;
  bool on = a.action == "enable";
  print_chain(ENVRUN_TRY(runtime::intercept_set(store, a.id, on ? a.names : none, on ? none : a.names)));
  return 0;
}

}  // namespace

void add_intercept(CLI::App& app, Globals& g) {
  static ControlArgs args;
  auto* sub = app.add_subcommand(
      "intercept", "interception databases (compile, check, explain) and a running container's interceptors");
  sub->add_option("id", args.id, "container id (for enable, disable, status)");
  sub->add_option("action", args.action, "enable | disable | set | status");
  sub->add_option("names", args.names, "interceptor names (enable, disable), or NAME KEY=VALUE... (set)");
  sub->add_flag("--json", args.json, "status: the chain and the meter's counters as JSON");
  add_compile(*sub, g);
  add_check(*sub, g);
  add_intercept_explain(*sub, g);
  sub->footer(  // after the subcommands: they would inherit it
      "  envrun intercept ID enable NAME...    switch interceptors on (one atomic change)\n"
      "  envrun intercept ID disable NAME...   switch interceptors off\n"
      "  envrun intercept ID set NAME K=V...   change options of an interceptor while it runs\n"
      "  envrun intercept ID status            the chain: position, name, on/off, options\n"
      "  envrun intercept ID status --json     the chain and the meter's counters, as JSON\n"
      "See envrun-intercept(5) for intercept.yaml.");
  sub->callback([&g, sub] {
    if (!sub->get_subcommands().empty()) return;  // compile, check or explain ran
    log::init(g.log_file, g.log_format == "json", g.debug);
    auto r = control(g, args);
    g.rc = r ? *r : fail("intercept", args.id, r.error());
  });
}

}  // namespace envrun::cli
