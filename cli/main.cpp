// envrun: the command line. Each command lives in cmd_<name>.cpp.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "cli/cli.hpp"
#include "cli/remote_helper.hpp"
#include "runtime/container.hpp"
#include "kernel/log.hpp"

using namespace envrun;

namespace envrun::cli {

int fail(const std::string& op, const std::string& id, const Error& e) {
  std::string line = op + (id.empty() ? "" : " " + id) + ": " + e.message;
  log::error(line);
  std::fprintf(stderr, "envrun: %s\n", line.c_str());
  return exit_code(e.kind);
}

void on_run(CLI::App* sub, Globals& g, const std::string& op, const std::string* id,
            std::function<Result<int>()> body) {
  sub->callback([&g, op, id, body = std::move(body)] {
    log::init(g.log_file, g.log_format == "json", g.debug);
    auto r = body();
    g.rc = r ? *r : fail(op, id ? *id : "", r.error());
  });
}

}  // namespace envrun::cli

int main(int argc, char** argv) {
  // envrun --host URL --token-file F CMD ...: through an agent's API (envrun-serve(8)).
  if (cli::wants_remote(argc, argv)) return cli::exec_remote(argc, argv);
  cli::Globals g;
  // Like runc: an ordinary user keeps state under $XDG_RUNTIME_DIR (isolation intercept
  // needs no root), else under /tmp/envrun-<uid>.
  if (::geteuid() != 0) {
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    g.root = xdg && *xdg && ::access(xdg, W_OK) == 0 ? std::string(xdg) + "/envrun"
                                                      : "/tmp/envrun-" + std::to_string(::geteuid());
  }
  CLI::App app{"envrun: a container runtime (runc-compatible) for OCI bundles", "envrun"};
  app.set_version_flag("-v,--version", std::string("envrun version ") + ENVRUN_VERSION + "\nspec: 1.2.0");
  app.add_option("--root", g.root, "root directory for container state")->capture_default_str();
  app.add_option("--log", g.log_file, "log file (default: errors on stderr)");
  app.add_option("--log-format", g.log_format, "log format")->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", g.debug, "enable debug logging");
  std::string cgroup_root;
  app.add_option("--cgroup-root", cgroup_root,
                 "create every container's cgroup under this path (default: the hierarchy's root; also "
                 "$ENVRUN_CGROUP_ROOT, which the processes envrun starts inherit)")
      ->check([](const std::string& v) {
        auto r = runtime::check_cgroup_root(v);
        return r ? std::string() : r.error().message;
      })
      ->each([](const std::string& v) { ::setenv(runtime::kCgroupRootEnv, v.c_str(), 1); });
  app.add_flag("--systemd-cgroup", g.systemd_cgroup, "accepted for runc compatibility (cgroupsPath slice:prefix:name is understood either way)");
  app.add_option("--rootless", g.rootless, "accepted for runc compatibility");
  app.require_subcommand(1);
  app.fallthrough();

  cli::add_create(app, g);
  cli::add_run(app, g);
  cli::add_start(app, g);
  cli::add_state(app, g);
  cli::add_kill(app, g);
  cli::add_delete(app, g);
  cli::add_list(app, g);
  cli::add_ps(app, g);
  cli::add_exec(app, g);
  cli::add_pause_resume(app, g);
  cli::add_checkpoint(app, g);
  cli::add_serve(app, g);
  cli::add_token(app, g);
  cli::add_migrate(app, g);
  cli::add_library(app, g);
  cli::add_drain(app, g);
  cli::add_spec(app, g);
  cli::add_features(app, g);
  cli::add_events(app, g);
  cli::add_update(app, g);
  cli::add_intercept(app, g);
  cli::add_meterd(app, g);
  cli::add_billing(app, g);
  cli::add_pull(app, g);
  cli::add_push(app, g);
  cli::add_login(app, g);

  // `exec ID -- CMD` and `ps ID -- ARGS`: CLI11 hands what follows "--" back to the
  // parent app once the id is filled, so drop the marker: these commands stop option
  // parsing at the first word after the id anyway (prefix_command).
  std::vector<std::string> args(argv + 1, argv + argc);
  bool prefix_cmd = false, meter = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "exec" || args[i] == "ps") prefix_cmd = true;
    if (args[i] == "--meter" && prefix_cmd) meter = true;
    if (args[i] == "--" && prefix_cmd) {
      // exec --meter [OPTIONS] -- CMD...: the command is taken whole, options included.
      if (meter) cli::meter_command().assign(args.begin() + long(i) + 1, args.end()), args.resize(i + 1);
      args.erase(args.begin() + long(i));
      break;
    }
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments reversed
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string why = e.what();
    // A word where the command should be that names no command: say so plainly.
    if (app.get_subcommands().empty()) {
      for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a.empty() || a[0] == '-') {
          if (a == "--root" || a == "--log" || a == "--log-format" || a == "--rootless") ++i;  // skip its value
          continue;
        }
        why = "unknown command \"" + a + "\"";
        break;
      }
    }
    std::fprintf(stderr, "envrun: %s\nRun 'envrun --help' for usage.\n", why.c_str());
    return 2;
  }
  return g.rc;
}
