// envrun events ID: resource usage as JSON, once (--stats) or every --interval.
#include <unistd.h>

#include <cstdio>

#include "cli/cli.hpp"
#include "cli/duration.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

void add_events(CLI::App& app, Globals& g) {
  static std::string id, interval = "5s";
  static bool stats = false;
  auto* sub = app.add_subcommand("events", "print container resource usage (JSON lines)");
  sub->add_option("id", id, "container id")->required();
  sub->add_flag("--stats", stats, "print one stats object and exit");
  sub->add_option("--interval", interval, "interval between stats (5s, 500ms, 1m)")->capture_default_str();
  on_run(sub, g, "events", &id, [&g]() -> Result<int> {
    long ms = parse_duration_ms(interval);
    if (ms <= 0) return Error::make(ErrorKind::Usage, "--interval " + interval + ": expected a duration like 5s");
    auto store = g.store();
    for (;;) {
      auto j = ENVRUN_TRY(runtime::container_stats(store, id));
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
      if (stats) return 0;
      ::usleep(useconds_t(ms * 1000));
      auto st = store.load(id);
      if (!st || store.status(*st) == runtime::Status::Stopped) return 0;
    }
  });
}

}  // namespace envrun::cli
