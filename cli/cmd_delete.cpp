// envrun delete ID: remove a stopped container (--force: any container).
#include "cli/cli.hpp"
#include "cli/metering.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

void add_delete(CLI::App& app, Globals& g) {
  static std::string id;
  static bool force = false;
  auto* sub = app.add_subcommand("delete", "delete a container and everything it holds");
  sub->add_option("id", id, "container id")->required();
  sub->add_flag("-f,--force", force, "kill the container first if it is still running");
  on_run(sub, g, "delete", &id, [&g]() -> Result<int> {
    // Metering is on once the host has a ledger (cli/metering.hpp): the last interval is
    // sampled before the cgroup goes and recorded once the container is deleted.
    std::string ledger = metering::ledger_path();
    std::optional<metering::FinalSample> last;
    if (fs::exists(ledger)) {
      auto s = metering::take_final_sample(g.store(), id);
      if (s) last = std::move(*s);
      else if (s.error().kind != ErrorKind::NotFound) log::warn("delete " + id + ": billing: " + s.error().message);
    }
    auto r = runtime::delete_container(g.store(), id, force);
    if (r && last) {
      auto rec = metering::record_final(ledger, *last);
      if (!rec) log::warn("delete " + id + ": billing: the last interval was not recorded: " + rec.error().message);
    }
    // runc: `delete --force` of a container that does not exist succeeds.
    if (!r && force && r.error().kind == ErrorKind::NotFound) return 0;
    ENVRUN_CHECK(std::move(r));
    return 0;
  });
}

}  // namespace envrun::cli
