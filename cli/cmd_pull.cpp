// envrun pull REF: fetch an image from an OCI registry into a bundle directory.
// The work is done by the envrun-pull helper installed next to envrun: libcurl cannot be
// linked into the static envrun on Debian 12 (its dependencies ship no static archives).
#include "cli/cli.hpp"
#include "cli/pull_options.hpp"
#include "cli/registry_helper.hpp"

namespace envrun::cli {

void add_pull(CLI::App& app, Globals& g) {
  static registry::PullOptions o;
  auto* sub = app.add_subcommand("pull", "fetch an image from an OCI registry into a bundle directory");
  add_pull_options(sub, o);
  on_run(sub, g, "pull", &o.reference, [&g]() -> Result<int> {
    std::vector<std::string> args{o.reference, "--jobs", std::to_string(o.jobs)};
    if (!o.bundle.empty()) args.insert(args.end(), {"--bundle", o.bundle});
    if (!o.platform.empty()) args.insert(args.end(), {"--platform", o.platform});
    if (!o.store.empty()) args.insert(args.end(), {"--store", o.store});
    if (!o.authfile.empty()) args.insert(args.end(), {"--authfile", o.authfile});
    if (o.insecure) args.push_back("--insecure");
    if (o.json) args.push_back("--json");
    if (o.quiet) args.push_back("--quiet");
    return exec_registry_helper(g, "", args);
  });
}

}  // namespace envrun::cli
