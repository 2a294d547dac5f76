// envrun run ID: create + start; in the foreground, wait and exit with the
// process's status, then delete the container (unless --keep).
#include <unistd.h>

#include "cli/cli.hpp"
#include "cli/create_flags.hpp"
#include "cli/metering.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

void add_run(CLI::App& app, Globals& g) {
  static runtime::CreateOptions o;
  static bool detach = false, keep = false;
  o.bundle = ".";
  auto* sub = app.add_subcommand("run", "create and start a container; wait for it unless --detach");
  add_create_flags(sub, o);
  sub->add_flag("-d,--detach", detach, "return once the container has started");
  sub->add_flag("--keep", keep, "do not delete the container after it exits");
  on_run(sub, g, "run", &o.id, [&g]() -> Result<int> {
    auto store = g.store();
    ENVRUN_CHECK(metering::check_bundle_settings(o.bundle));
    auto c = ENVRUN_TRY(runtime::create_container(store, o, !detach));
    auto started = runtime::start_container(store, o.id);
    if (!started) {
      (void)runtime::delete_container(store, o.id, true);
      return std::move(started).error();
    }
    if (detach) {
      if (c.console_master >= 0) ::close(c.console_master);
      return 0;
    }
    int status = ENVRUN_TRY(runtime::wait_container(c.state.pid, c.console_master));
    if (!keep) ENVRUN_CHECK(metering::delete_metered(store, o.id, true));
    return status;
  });
}

}  // namespace envrun::cli
