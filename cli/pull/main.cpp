// envrun-pull: the dynamically linked helper behind `envrun pull` (libcurl, libarchive).
// Same options as `envrun pull` plus the global logging options; same error line and
// exit codes as envrun (envrun(1)).
#include <chrono>
#include <csignal>
#include <cstdio>

#include "bundle/registry_progress.hpp"
#include "cli/exit_code.hpp"
#include "cli/pull/registry_commands.hpp"
#include "cli/pull_options.hpp"
#include "kernel/log.hpp"

using namespace envrun;

namespace {

void on_signal(int) { registry::request_cancel(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && cli::is_registry_command(argv[1])) {  // envrun push / login / logout
    auto r = cli::run_registry_command(argc - 1, argv + 1);
    if (r) return *r;
    log::error(r.error().message);
    std::fprintf(stderr, "envrun: %s\n", r.error().message.c_str());
    return cli::exit_code(r.error().kind);
  }
  registry::PullOptions o;
  std::string log_file, log_format = "text";
  bool debug = false;
  CLI::App app{"envrun-pull: the helper behind `envrun pull`", "envrun-pull"};
  app.add_option("--log", log_file, "log file");
  app.add_option("--log-format", log_format, "log format")->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", debug, "enable debug logging");
  cli::add_pull_options(&app, o);
  CLI11_PARSE(app, argc, argv);
  log::init(log_file, log_format == "json", debug);
  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: a blocked wait returns and the pull cleans up
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  auto mode = o.json ? registry::ProgressMode::Json : o.quiet ? registry::ProgressMode::Quiet : registry::ProgressMode::Auto;
  auto progress = registry::make_progress(mode);
  auto began = std::chrono::steady_clock::now();
  auto r = registry::pull_image(o, *progress);
  if (!r) {
    std::string line = "pull " + o.reference + ": " + r.error().message;
    log::error(line);
    progress->failed(line);
    std::fprintf(stderr, "envrun: %s\n", line.c_str());
    return cli::exit_code(r.error().kind);
  }
  if (o.json || o.quiet) return 0;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  std::string rate = registry::human_bytes(secs > 0 ? double(r->bytes) / secs : 0) + "/s";
  std::printf("pulled %s into %s: %d layers, %d blobs downloaded (%llu bytes, %s), %d already stored, %llu entries unpacked, in %.1f s\n",
              o.reference.c_str(), r->bundle.c_str(), r->layers, r->downloaded, (unsigned long long)r->bytes, rate.c_str(),
              r->reused, (unsigned long long)r->entries, secs);
  return 0;
}
