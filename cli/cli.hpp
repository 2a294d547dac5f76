// Shared by the CLI's command files: global options, the error line, exit codes.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "cli/exit_code.hpp"
#include "kernel/result.hpp"
#include "runtime/state.hpp"

namespace envrun::cli {

struct Globals {
  std::string root = runtime::kDefaultRoot;
  std::string log_file;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
  std::string rootless = "auto";
  int rc = 0;  // the exit status the command chose
  runtime::StateStore store() const { return runtime::StateStore(root); }
};

// `envrun exec --meter [OPTIONS] -- CMD...`: the words after "--", split off before parsing.
inline std::vector<std::string>& meter_command() {
  static std::vector<std::string> words;
  return words;
}

// Print "envrun: <op> <id>: <message>" (and log it) and return the exit status.
int fail(const std::string& op, const std::string& id, const Error& e);
// Run `body` as the command's action: its Result decides the exit status.
void on_run(CLI::App* sub, Globals& g, const std::string& op, const std::string* id,
            std::function<Result<int>()> body);

// One function per command file (cmd_<name>.cpp).
void add_create(CLI::App& app, Globals& g);
void add_run(CLI::App& app, Globals& g);
void add_start(CLI::App& app, Globals& g);
void add_state(CLI::App& app, Globals& g);
void add_kill(CLI::App& app, Globals& g);
void add_delete(CLI::App& app, Globals& g);
void add_list(CLI::App& app, Globals& g);
void add_ps(CLI::App& app, Globals& g);
void add_exec(CLI::App& app, Globals& g);
void add_pause_resume(CLI::App& app, Globals& g);
void add_spec(CLI::App& app, Globals& g);
void add_features(CLI::App& app, Globals& g);
void add_events(CLI::App& app, Globals& g);
void add_update(CLI::App& app, Globals& g);
void add_intercept(CLI::App& app, Globals& g);
void add_meterd(CLI::App& app, Globals& g);
void add_billing(CLI::App& app, Globals& g);
void add_pull(CLI::App& app, Globals& g);
void add_push(CLI::App& app, Globals& g);
void add_login(CLI::App& app, Globals& g);  // and logout
void add_checkpoint(CLI::App& app, Globals& g);  // and restore
void add_serve(CLI::App& app, Globals& g);
void add_migrate(CLI::App& app, Globals& g);
void add_drain(CLI::App& app, Globals& g);
void add_token(CLI::App& app, Globals& g);  // management API tokens (cmd_token.cpp)
void add_library(CLI::App& app, Globals& g);  // and upgrade (cmd_library.cpp)

}  // namespace envrun::cli
