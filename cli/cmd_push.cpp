// envrun push BUNDLE REF: publish a bundle (rootfs layer, config.json, intercept.yaml) to an
// OCI registry; the envrun-pull helper does the work (pull/push_main.cpp).
#include "cli/push_options.hpp"
#include "cli/registry_helper.hpp"

namespace envrun::cli {

void add_push(CLI::App& app, Globals& g) {
  static PushArgs o;
  auto* sub = app.add_subcommand("push", "publish a bundle to an OCI registry (envrun pull gives it back)");
  add_push_options(sub, o);
  on_run(sub, g, "push", &o.reference, [&g]() { return exec_registry_helper(g, "push", o.helper_args()); });
}

}  // namespace envrun::cli
