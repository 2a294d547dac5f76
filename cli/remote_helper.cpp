// Running envrun-api: exec (API alone, remote CLI) or as a child (beside the migration listener).
#include "cli/remote_helper.hpp"

#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdio>

#include "billing/ledger.hpp"

namespace envrun::cli {

namespace {

Result<std::string> self_dir() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return Error::sys("/proc/self/exe");
  std::string s(self, size_t(n));
  return s.substr(0, s.find_last_of('/'));
}

Result<std::string> helper_path() {
  auto dir = ENVRUN_TRY(self_dir());
  std::string h = dir + "/envrun-api";
  if (::access(h.c_str(), X_OK) != 0) return Error::sys("helper " + h + " (installed with envrun)");
  return h;
}

Result<std::vector<std::string>> serve_argv(const Globals& g, const ApiFlags& f, const std::string& dir, bool child) {
  auto helper = ENVRUN_TRY(helper_path());
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return Error::sys("/proc/self/exe");
  std::vector<std::string> a{helper, "--log-format", g.log_format};
  if (!g.log_file.empty()) a.insert(a.end(), {"--log", g.log_file});
  if (g.debug) a.push_back("--debug");
  a.insert(a.end(), {"serve", "--root", dir, "--envrun", std::string(self, size_t(n)),
                     "--ledger", f.ledger.empty() ? billing::default_ledger_path() : f.ledger});
  if (!f.plan.empty()) a.insert(a.end(), {"--plan", f.plan});
  for (const auto& s : f.api) a.insert(a.end(), {"--api", s});
  if (f.api.empty()) a.insert(a.end(), {"--api", "unix:" + dir + "/api.sock"});
  if (!f.listen.empty()) a.insert(a.end(), {"--api-listen", f.listen, "--tls-cert", f.cert, "--tls-key", f.key});
  if (f.list_routes) a.push_back("--list-routes");
  if (child) a.push_back("--child");
  return a;
}

int exec_argv(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(args[0].c_str(), argv.data());
  std::fprintf(stderr, "envrun: exec %s: %s\n", args[0].c_str(), std::strerror(errno));
  return 7;
}

}  // namespace

void add_api_flags(CLI::App* s, ApiFlags& f) {
  s->add_option("--api", f.api, "management API socket unix:PATH (default unix:DIR/api.sock, mode 0660)");
  s->add_option("--api-listen", f.listen, "also serve the API on ADDR:PORT over TLS (needs --tls-cert, --tls-key)");
  s->add_option("--tls-cert", f.cert, "PEM certificate (chain) for --api-listen");
  s->add_option("--tls-key", f.key, "PEM private key for --api-listen");
  s->add_option("--ledger", f.ledger, "billing ledger read by GET /v1/usage (default: envrun billing's)");
  s->add_option("--plan", f.plan, "pricing plan (envrun-billing(5)) that prices GET /v1/billing");
  s->add_flag("--no-api", f.no_api, "serve migrations only (no management API)");
  s->add_flag("--list-routes", f.list_routes, "print the API's routes (METHOD PATH) and exit");
}

Result<int> exec_api_serve(const Globals& g, const ApiFlags& f, const std::string& dir) {
  if (!f.listen.empty() && (f.cert.empty() || f.key.empty()))
    return Error::make(ErrorKind::Usage, "--api-listen needs --tls-cert and --tls-key (plain TCP is refused)");
  auto argv = ENVRUN_TRY(serve_argv(g, f, dir, false));
  return exec_argv(argv);
}

Result<ApiChild> start_api_serve(const Globals& g, const ApiFlags& f, const std::string& dir) {
  if (f.no_api) return ApiChild(std::nullopt);
  if (!f.listen.empty() && (f.cert.empty() || f.key.empty()))
    return Error::make(ErrorKind::Usage, "--api-listen needs --tls-cert and --tls-key (plain TCP is refused)");
  auto argv = ENVRUN_TRY(serve_argv(g, f, dir, true));
  // Its log lines go to our stderr, not to the pipe Child keeps for error messages.
  auto c = ENVRUN_TRY(ha::Child::spawn({argv, {{2, 2}}}));
  return ApiChild(std::move(c));
}

ApiChild::~ApiChild() {
  if (!child_ || child_->pid() <= 0) return;  // moved from: pid -1 would be kill(-1) = every process
  ::kill(child_->pid(), SIGTERM);
  (void)child_->wait();
}

bool wants_remote(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--host" || a.rfind("--host=", 0) == 0) return true;
    if (!a.empty() && a[0] != '-') return false;  // the command word came first
    if (a == "--root" || a == "--log" || a == "--log-format" || a == "--rootless" || a == "--token-file" || a == "--cacert") ++i;
  }
  return false;
}

int exec_remote(int argc, char** argv) {
  auto h = helper_path();
  if (!h) {
    std::fprintf(stderr, "envrun: %s\n", h.error().message.c_str());
    return 7;
  }
  std::vector<std::string> args{*h, "remote"};
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return exec_argv(args);
}

}  // namespace envrun::cli
