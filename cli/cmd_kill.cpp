// envrun kill ID [SIGNAL]: signal the container's process (or all with --all).
#include "cli/cli.hpp"
#include "kernel/process.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

void add_kill(CLI::App& app, Globals& g) {
  static std::string id, signal = "SIGTERM";
  static bool all = false;
  auto* sub = app.add_subcommand("kill", "send a signal (default SIGTERM) to the container's process");
  sub->add_option("id", id, "container id")->required();
  sub->add_option("signal", signal, "signal name or number (KILL, SIGKILL, 9)");
  sub->add_flag("-a,--all", all, "signal every process in the container");
  on_run(sub, g, "kill", &id, [&g]() -> Result<int> {
    int sig = proc::signal_from_name(signal);
    if (sig < 0) return Error::make(ErrorKind::Usage, "unknown signal \"" + signal + "\"");
    ENVRUN_CHECK(runtime::kill_container(g.store(), id, sig, all));
    return 0;
  });
}

}  // namespace envrun::cli
