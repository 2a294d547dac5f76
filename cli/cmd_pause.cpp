// envrun pause ID / resume ID: freeze and thaw the container's cgroup.
#include "cli/cli.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

void add_pause_resume(CLI::App& app, Globals& g) {
  static std::string pause_id, resume_id;
  auto* p = app.add_subcommand("pause", "suspend every process of a container (cgroup freezer)");
  p->add_option("id", pause_id, "container id")->required();
  on_run(p, g, "pause", &pause_id, [&g]() -> Result<int> {
    ENVRUN_CHECK(runtime::pause_container(g.store(), pause_id));
    return 0;
  });
  auto* r = app.add_subcommand("resume", "resume a paused container");
  r->add_option("id", resume_id, "container id")->required();
  on_run(r, g, "resume", &resume_id, [&g]() -> Result<int> {
    ENVRUN_CHECK(runtime::resume_container(g.store(), resume_id));
    return 0;
  });
}

}  // namespace envrun::cli
