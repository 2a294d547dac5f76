// envrun-api: the dynamically linked helper behind `envrun serve`'s management API and the
// remote CLI (`envrun --host URL ...`): cpp-httplib is only packaged as a shared library on
// Debian 12, and envrun itself is linked statically. `envrun serve` execs or spawns
// `envrun-api serve ...`; `envrun --host URL CMD ...` execs `envrun-api remote ...`.
#include <sys/prctl.h>
#include <unistd.h>

#include <climits>

#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "agent/api/http_server.hpp"
#include "billing/plan.hpp"
#include "cli/api/remote_client.hpp"
#include "cli/exit_code.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"

using namespace envrun;

namespace {

struct ServeArgs {
  std::string dir, envrun, ledger, plan;
  std::vector<std::string> api;  // unix:PATH
  std::string listen, cert, key;
  size_t max_body = 1 << 20;
  int threads = 64;
  bool list_routes = false, child = false;
};

Result<int> serve(const ServeArgs& a) {
  if (a.child) ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the envrun serve that started us is gone: stop
  if (!a.plan.empty()) ENVRUN_CHECK(billing::load_plan(a.plan));  // refused at start, not at the first request
  agent::api::ApiOptions o{a.dir, a.envrun, "", a.ledger, [](const std::string& s) {
                             std::fprintf(stderr, "%s envrun serve: api: %s\n", log::now_rfc3339().c_str(), s.c_str());
                             std::fflush(stderr);
                             if (log::has_file()) log::info("serve: api: " + s);
                           }};
  o.plan = a.plan;
  agent::api::ApiContext ctx(o);
  if (a.list_routes) {
    for (const auto& r : agent::api::route_list(ctx)) std::printf("%s\n", r.c_str());
    return 0;
  }
  agent::api::HttpOptions h;
  h.max_body = a.max_body;
  h.threads = a.threads;
  for (const auto& s : a.api) {
    if (s.rfind("unix:", 0) != 0 || s.size() == 5)
      return Error::make(ErrorKind::Usage, "--api \"" + s + "\": want unix:PATH (TCP: --api-listen with --tls-cert/--tls-key)");
    h.unix_path = s.substr(5);
  }
  if (!a.listen.empty()) {
    auto colon = a.listen.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return Error::make(ErrorKind::Usage, "--api-listen \"" + a.listen + "\": want ADDR:PORT");
    h.tcp_host = a.listen.substr(0, colon);
    if (h.tcp_host.front() == '[' && h.tcp_host.back() == ']') h.tcp_host = h.tcp_host.substr(1, h.tcp_host.size() - 2);
    h.tcp_port = std::atoi(a.listen.c_str() + colon + 1);
    if (h.tcp_port <= 0 || h.tcp_port > 65535) return Error::make(ErrorKind::Usage, "--api-listen \"" + a.listen + "\": bad port");
    if (a.cert.empty() || a.key.empty())
      return Error::make(ErrorKind::Usage, "--api-listen needs --tls-cert and --tls-key (plain TCP is refused)");
    h.cert = a.cert;
    h.key = a.key;
  }
  if (h.unix_path.empty() && h.tcp_host.empty()) return Error::make(ErrorKind::Usage, "no API listener (--api or --api-listen)");
  ENVRUN_CHECK(fs::mkdir_p(a.dir, 0711));
  ENVRUN_CHECK(fs::mkdir_p(a.dir + "/api", 0700));
  ENVRUN_CHECK(fs::mkdir_p(a.dir + "/state", 0700));
  auto audit = ENVRUN_TRY(agent::api::AuditLog::open(a.dir + "/api/audit.log"));
  ctx.audit.reset(audit);
  ENVRUN_CHECK(agent::api::serve_http(ctx, h));
  return 0;
}

int fail(const Error& e) {
  log::error(e.message);
  std::fprintf(stderr, "envrun: %s\n", e.message.c_str());
  return cli::exit_code(e.kind);
}

// Any other command line is envrun's: code shared with envrun that re-executes
// /proc/self/exe for an envrun command (agent/upgrade.cpp, ha/subprocess.hpp) lands here,
// so hand it to the envrun installed next to this helper.
int exec_envrun(char** argv) {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return fail(Error::sys("/proc/self/exe"));
  std::string s(self, size_t(n));
  std::string envrun = s.substr(0, s.find_last_of('/')) + "/envrun";
  argv[0] = envrun.data();
  ::execv(envrun.c_str(), argv);
  return fail(Error::sys("exec " + envrun));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "remote") return cli::remote_main(argc - 1, argv + 1);
  bool ours = false;
  for (int i = 1; i < argc; ++i) {  // the first word that is no option (or --log's value) decides
    std::string a = argv[i];
    if (a == "--log" || a == "--log-format") ++i;
    else if (a == "--help" || a == "-h") ours = true;
    else if (a.empty() || a[0] != '-') {
      ours = ours || a == "serve";
      break;
    }
  }
  if (!ours && argc > 1) return exec_envrun(argv);
  ServeArgs a;
  std::string log_file, log_format = "text";
  bool debug = false;
  CLI::App app{"envrun-api: the management API behind `envrun serve` (envrun-serve(8))", "envrun-api"};
  app.require_subcommand(1);
  auto* s = app.add_subcommand("serve", "serve the API until SIGTERM");
  s->add_option("--root", a.dir, "the agent's directory")->required();
  s->add_option("--envrun", a.envrun, "the envrun binary run for changes")->required();
  s->add_option("--ledger", a.ledger, "billing ledger");
  s->add_option("--plan", a.plan, "pricing plan for GET /v1/billing");
  s->add_option("--api", a.api, "unix:PATH");
  s->add_option("--api-listen", a.listen, "ADDR:PORT (TLS)");
  s->add_option("--tls-cert", a.cert, "PEM certificate");
  s->add_option("--tls-key", a.key, "PEM private key");
  s->add_option("--max-body", a.max_body, "largest request body")->capture_default_str();
  s->add_option("--threads", a.threads, "worker threads per listener")->capture_default_str()->check(CLI::Range(2, 1024));
  s->add_flag("--list-routes", a.list_routes, "print the routes and exit");
  s->add_flag("--child", a.child, "stop when the parent exits");
  app.add_option("--log", log_file, "log file");
  app.add_option("--log-format", log_format, "log format")->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", debug, "enable debug logging");
  CLI11_PARSE(app, argc, argv);
  log::init(log_file, log_format == "json", debug);
  auto r = serve(a);
  return r ? *r : fail(r.error());
}
