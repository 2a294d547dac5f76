// envrun start ID: the created container's process execs.
#include "cli/cli.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

void add_start(CLI::App& app, Globals& g) {
  static std::string id;
  auto* sub = app.add_subcommand("start", "start a created container");
  sub->add_option("id", id, "container id")->required();
  on_run(sub, g, "start", &id, [&g]() -> Result<int> {
    ENVRUN_CHECK(runtime::start_container(g.store(), id));
    return 0;
  });
}

}  // namespace envrun::cli
