// envrun login REGISTRY / envrun logout REGISTRY: registry credentials in auth.json (docker's
// format, mode 0600), read by pull and push; the envrun-pull helper does the work.
#include "cli/push_options.hpp"
#include "cli/registry_helper.hpp"

namespace envrun::cli {

void add_login(CLI::App& app, Globals& g) {
  static LoginArgs in, out;
  auto* login = app.add_subcommand("login", "check and store credentials for a registry");
  add_login_options(login, in, true);
  on_run(login, g, "login", &in.registry, [&g]() { return exec_registry_helper(g, "login", in.helper_args()); });
  auto* logout = app.add_subcommand("logout", "remove the stored credentials of a registry");
  add_login_options(logout, out, false);
  on_run(logout, g, "logout", &out.registry, [&g]() { return exec_registry_helper(g, "logout", out.helper_args()); });
}

}  // namespace envrun::cli
