// envrun create ID: set the container up; its process waits for `start`.
#include <cstdio>

#include "cli/cli.hpp"
#include "cli/create_flags.hpp"
#include "cli/metering.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

void add_create_flags(CLI::App* sub, runtime::CreateOptions& o) {
  sub->add_option("id", o.id, "container id")->required();
  sub->add_option("-b,--bundle", o.bundle, "bundle directory (config.json or config.yaml, rootfs/)")->capture_default_str();
  sub->add_option("--console-socket", o.console_socket, "unix socket that receives the pty master (process.terminal)");
  sub->add_option("--pid-file", o.pid_file, "file to write the container process's pid to");
  sub->add_option("--preserve-fds", o.preserve_fds, "pass N extra fds (3..3+N-1) into the container");
  sub->add_flag("--no-pivot", o.no_pivot, "move the rootfs onto / and chroot instead of pivot_root (rootfs on ramfs)");
  sub->add_flag("--no-new-keyring")->description("accepted for runc compatibility (no session keyring is created)");
}

void add_create(CLI::App& app, Globals& g) {
  static runtime::CreateOptions o;
  o.bundle = ".";
  auto* sub = app.add_subcommand("create", "create a container (its process waits for 'start')");
  add_create_flags(sub, o);
  on_run(sub, g, "create", &o.id, [&g]() -> Result<int> {
    ENVRUN_CHECK(metering::check_bundle_settings(o.bundle));
    auto c = ENVRUN_TRY(runtime::create_container(g.store(), o));
    (void)c;
    return 0;
  });
}

}  // namespace envrun::cli
