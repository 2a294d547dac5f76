// envrun delete ID: remove a stopped container (--force: any container).
#include "cli/cli.hpp"
#include "cli/metering.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

void add_delete(CLI::App& app, Globals& g) {
  static std::string id;
  static bool force = false;
  auto* sub = app.add_subcommand("delete", "delete a container and everything it holds");
  sub->add_option("id", id, "container id")->required();
  sub->add_flag("-f,--force", force, "kill the container first if it is still running");
  on_run(sub, g, "delete", &id, [&g]() -> Result<int> {
    // The last interval is recorded when the host has a billing ledger (cli/metering.hpp).
    auto r = metering::delete_metered(g.store(), id, force);
    // runc: `delete --force` of a container that does not exist succeeds.
    if (!r && force && r.error().kind == ErrorKind::NotFound) return 0;
    ENVRUN_CHECK(std::move(r));
    return 0;
  });
}

}  // namespace envrun::cli
