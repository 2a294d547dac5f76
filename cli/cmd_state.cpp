// envrun state ID: the OCI state JSON.
#include <cstdio>

#include "cli/cli.hpp"
#include "runtime/state.hpp"

namespace envrun::cli {

void add_state(CLI::App& app, Globals& g) {
  static std::string id;
  auto* sub = app.add_subcommand("state", "print the OCI state of a container as JSON");
  sub->add_option("id", id, "container id")->required();
  on_run(sub, g, "state", &id, [&g]() -> Result<int> {
    auto store = g.store();
    auto st = ENVRUN_TRY(store.load(id));
    std::printf("%s\n", runtime::oci_state_json(st, store.status(st)).dump(2).c_str());
    return 0;
  });
}

}  // namespace envrun::cli
