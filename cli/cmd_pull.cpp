// envrun pull REF: fetch an image from an OCI registry into a bundle directory.
// The work is done by the envrun-pull helper installed next to envrun: libcurl cannot be
// linked into the static envrun on Debian 12 (its dependencies ship no static archives).
#include <unistd.h>

#include <climits>

#include "cli/cli.hpp"
#include "cli/pull_options.hpp"

namespace envrun::cli {
namespace {

Result<std::string> helper_path() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return Error::sys("/proc/self/exe");
  std::string dir(self, size_t(n));
  dir.resize(dir.find_last_of('/'));
  std::string p = dir + "/envrun-pull";
  if (::access(p.c_str(), X_OK) != 0) return Error::sys("helper " + p + " (installed with envrun)");
  return p;
}

}  // namespace

void add_pull(CLI::App& app, Globals& g) {
  static registry::PullOptions o;
  auto* sub = app.add_subcommand("pull", "fetch an image from an OCI registry into a bundle directory");
  add_pull_options(sub, o);
  on_run(sub, g, "pull", &o.reference, [&g]() -> Result<int> {
    std::string helper = ENVRUN_TRY(helper_path());
    std::vector<std::string> args{helper, "--log-format", g.log_format};
    if (!g.log_file.empty()) args.insert(args.end(), {"--log", g.log_file});
    if (g.debug) args.push_back("--debug");
    args.insert(args.end(), {o.reference, "--jobs", std::to_string(o.jobs)});
    if (!o.bundle.empty()) args.insert(args.end(), {"--bundle", o.bundle});
    if (!o.platform.empty()) args.insert(args.end(), {"--platform", o.platform});
    if (!o.store.empty()) args.insert(args.end(), {"--store", o.store});
    if (o.insecure) args.push_back("--insecure");
    if (o.json) args.push_back("--json");
    if (o.quiet) args.push_back("--quiet");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(helper.c_str(), argv.data());
    return Error::sys("exec " + helper);
  });
}

}  // namespace envrun::cli
