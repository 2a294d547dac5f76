// envrun library add|publish|change|list|versions|remove and envrun upgrade: the bundle
// library and instance upgrades of an agent directory (the global --root, as `envrun serve`
// uses it; default /var/lib/envrun/agent), without going through the API.
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/library.hpp"
#include "agent/upgrade.hpp"
#include "cli/cli.hpp"
#include "cli/duration.hpp"
#include "kernel/fs.hpp"

namespace envrun::cli {

namespace {

constexpr const char* kDefaultAgentRoot = "/var/lib/envrun/agent";

nlohmann::json version_json(const agent::BundleVersion& v) {
  return {{"name", v.name}, {"version", v.version}, {"dir", v.dir}, {"created", v.created}, {"source", v.source}};
}

void print_version(const agent::BundleVersion& v, bool json) {
  if (json) std::printf("%s\n", version_json(v).dump().c_str());
  else std::printf("%s version %d: %s\n", v.name.c_str(), v.version, v.dir.c_str());
}

struct LibraryFlags {
  std::string name, dir, file, from, format = "table";
};

Result<int> list_bundles(agent::Library& lib, const LibraryFlags& f) {
  auto names = ENVRUN_TRY(lib.names());
  nlohmann::json all = nlohmann::json::array();
  if (f.format == "table") std::printf("%-24s %-8s %-9s %s\n", "NAME", "CURRENT", "VERSIONS", "INSTANCES");
  for (const auto& n : names) {
    auto cur = lib.current(n);
    auto vs = lib.versions(n);
    auto users = lib.instances_of(n);
    int cv = cur ? cur->version : 0;
    size_t nv = vs ? vs->size() : 0;
    if (f.format == "json") {
      all.push_back({{"name", n}, {"version", cv}, {"versions", nv}, {"instances", users}});
    } else {
      std::string u;
      for (const auto& id : users) u += (u.empty() ? "" : ",") + id;
      std::printf("%-24s %-8d %-9zu %s\n", n.c_str(), cv, nv, u.c_str());
    }
  }
  if (f.format == "json") std::printf("%s\n", all.dump().c_str());
  return 0;
}

Result<int> list_versions(agent::Library& lib, const LibraryFlags& f) {
  auto vs = ENVRUN_TRY(lib.versions(f.name));
  auto cur = lib.current(f.name);
  nlohmann::json all = nlohmann::json::array();
  for (const auto& v : vs) {
    bool is_cur = cur && cur->version == v.version;
    if (f.format == "json") {
      auto j = version_json(v);
      j["current"] = is_cur;
      all.push_back(j);
    } else {
      std::printf("%c %-4d %-32s %s\n", is_cur ? '*' : ' ', v.version, v.created.c_str(), v.source.c_str());
    }
  }
  if (f.format == "json") std::printf("%s\n", all.dump().c_str());
  return 0;
}

void add_library_commands(CLI::App& app, Globals& g, CLI::Option* root_opt) {
  static LibraryFlags f;
  auto* lib = app.add_subcommand("library", "the bundle library of an agent directory (--root, as envrun serve)");
  lib->require_subcommand(1);
  auto dir = [&g, root_opt] { return std::string(root_opt->count() ? g.root : kDefaultAgentRoot); };
  auto json = [] { return f.format == "json"; };

  auto* add = lib->add_subcommand("add", "add a bundle directory as version 1 of NAME");
  add->add_option("name", f.name, "bundle name")->required();
  add->add_option("dir", f.dir, "bundle directory (config, rootfs/, intercept.yaml, envrun.yaml)")->required();
  add->add_option("-f,--format", f.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  on_run(add, g, "library add", &f.name, [dir, json]() -> Result<int> {
    agent::Library l(dir());
    print_version(ENVRUN_TRY(l.add(f.name, f.dir)), json());
    return 0;
  });

  auto* pub = lib->add_subcommand("publish", "publish a bundle directory as the next version of NAME");
  pub->add_option("name", f.name, "bundle name")->required();
  pub->add_option("dir", f.dir, "bundle directory")->required();
  pub->add_option("-f,--format", f.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  on_run(pub, g, "library publish", &f.name, [dir, json]() -> Result<int> {
    agent::Library l(dir());
    print_version(ENVRUN_TRY(l.publish(f.name, f.dir)), json());
    return 0;
  });

  auto* chg = lib->add_subcommand("change", "the next version of NAME = the current one with FILE replaced");
  chg->add_option("name", f.name, "bundle name")->required();
  chg->add_option("file", f.file, "config.json, config.yaml, intercept.yaml or envrun.yaml")->required();
  chg->add_option("--from", f.from, "the new file's contents (default: stdin)");
  chg->add_option("-f,--format", f.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  on_run(chg, g, "library change", &f.name, [dir, json]() -> Result<int> {
    std::string text;
    if (!f.from.empty()) {
      text = ENVRUN_TRY(fs::read_file(f.from));
    } else {
      std::ostringstream s;
      s << std::cin.rdbuf();
      text = s.str();
    }
    agent::Library l(dir());
    print_version(ENVRUN_TRY(l.change_file(f.name, f.file, text)), json());
    return 0;
  });

  auto* ls = lib->add_subcommand("list", "list the bundles: current version, number of versions, instances");
  ls->add_option("-f,--format", f.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  on_run(ls, g, "library list", nullptr, [dir]() -> Result<int> {
    agent::Library l(dir());
    return list_bundles(l, f);
  });

  auto* vs = lib->add_subcommand("versions", "list the versions of NAME (* = current)");
  vs->add_option("name", f.name, "bundle name")->required();
  vs->add_option("-f,--format", f.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  on_run(vs, g, "library versions", &f.name, [dir]() -> Result<int> {
    agent::Library l(dir());
    return list_versions(l, f);
  });

  auto* rm = lib->add_subcommand("remove", "remove NAME and all its versions (refused while instances use it)");
  rm->add_option("name", f.name, "bundle name")->required();
  on_run(rm, g, "library remove", &f.name, [dir]() -> Result<int> {
    agent::Library l(dir());
    ENVRUN_CHECK(l.remove(f.name));
    return 0;
  });
}

struct UpgradeFlags {
  std::string id, mode = "auto", health_exec, health_http, health_timeout = "10s", format = "text";
  int to_version = 0;
};

void add_upgrade_command(CLI::App& app, Globals& g, CLI::Option* root_opt) {
  static UpgradeFlags f;
  auto* up = app.add_subcommand("upgrade", "move an instance of a library bundle to another version (rollback if unhealthy)");
  up->add_option("id", f.id, "instance id (in --root DIR/state)")->required();
  up->add_option("--to-version", f.to_version, "the version (default: the bundle's current one)");
  up->add_option("--mode", f.mode, "auto, restart or checkpoint")->capture_default_str();
  up->add_option("--health-exec", f.health_exec, "command run inside the instance (words split at spaces); exit 0 = healthy");
  up->add_option("--health-http", f.health_http, "URL whose GET must answer 2xx/3xx");
  up->add_option("--health-timeout", f.health_timeout, "how long the check may take to pass")->capture_default_str();
  up->add_option("-f,--format", f.format, "text or json")->check(CLI::IsMember({"text", "json"}));
  up->footer("--root DIR (global) is the agent's directory, as for envrun serve (default /var/lib/envrun/agent).\n"
             "Exit status 0 when upgraded (or already there), 1 when rolled back.");
  on_run(up, g, "upgrade", &f.id, [&g, root_opt]() -> Result<int> {
    std::string dir = root_opt->count() ? g.root : kDefaultAgentRoot;
    auto mode = ENVRUN_TRY(agent::parse_upgrade_mode(f.mode));
    agent::HealthCheck h;
    if (!f.health_exec.empty() && !f.health_http.empty())
      return Error::make(ErrorKind::Usage, "give --health-exec or --health-http, not both");
    std::istringstream words(f.health_exec);
    for (std::string w; words >> w;) h.exec.push_back(w);
    h.http = f.health_http;
    long ms = parse_duration_ms(f.health_timeout);
    if (ms < 1000) return Error::make(ErrorKind::Usage, "--health-timeout \"" + f.health_timeout + "\": want a duration of 1s or more");
    h.timeout_s = int(ms / 1000);
    auto r = ENVRUN_TRY(agent::upgrade_instance(dir, f.id, f.to_version, mode, h, [](const std::string& line) {
      std::fprintf(stderr, "envrun: upgrade: %s\n", line.c_str());
    }));
    if (f.format == "json") {
      nlohmann::json j = {{"upgraded", r.upgraded}, {"rolled_back", r.rolled_back}, {"from_version", r.from_version},
                          {"to_version", r.to_version}, {"mode", r.mode_used}, {"message", r.message},
                          {"downtime_ms", r.downtime_ms}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%s%s\n", r.message.c_str(),
                  r.upgraded ? (" in " + std::to_string(long(r.downtime_ms)) + " ms of downtime").c_str() : "");
    }
    return r.rolled_back ? 1 : 0;
  });
}

}  // namespace

void add_library(CLI::App& app, Globals& g) {
  auto* root_opt = app.get_option("--root");
  add_library_commands(app, g, root_opt);
  add_upgrade_command(app, g, root_opt);
}

}  // namespace envrun::cli
