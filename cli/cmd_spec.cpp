// envrun spec: write a default config.json (like `runc spec`).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "bundle/spec_parser.hpp"
#include "cli/cli.hpp"
#include "kernel/fs.hpp"

namespace envrun::cli {

void add_spec(CLI::App& app, Globals& g) {
  static std::string bundle = ".";
  static bool rootless = false;
  auto* sub = app.add_subcommand("spec", "write a default config.json into the bundle directory");
  sub->add_option("-b,--bundle", bundle, "bundle directory")->capture_default_str();
  sub->add_flag("--rootless", rootless, "a spec for a container started by a non-root user");
  on_run(sub, g, "spec", nullptr, []() -> Result<int> {
    std::string path = bundle + "/config.json";
    if (!fs::is_dir(bundle)) return Error::make(ErrorKind::Usage, "bundle " + bundle + ": no such directory");
    if (fs::exists(path)) return Error::make(ErrorKind::State, path + ": already exists (remove it first)");
    auto j = bundle::default_spec_json(rootless, ::getuid(), ::getgid());
    ENVRUN_CHECK(fs::atomic_write(path, j.dump(4) + "\n", 0644));
    return 0;
  });
}

}  // namespace envrun::cli
