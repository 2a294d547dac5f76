// envrun billing export|usage|serve|check-plan: reading the metering ledger (envrun-billing(5)).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <ctime>

#include "billing/export.hpp"
#include "billing/ledger.hpp"
#include "billing/plan.hpp"
#include "cli/cli.hpp"
#include "cli/duration.hpp"
#include "cli/metering.hpp"
#include "kernel/fd.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"

namespace envrun::cli {
namespace {

struct BillingArgs {
  std::string ledger, plan, format = "csv", out, from, to, stream = "default", granularity = "1h", grace = "60s", listen = "127.0.0.1:9477";
  bool since_last = false;
  std::string instance, usage_format = "table";
};

int64_t now_ms() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string ledger_path(const BillingArgs& a) { return a.ledger.empty() ? metering::ledger_path() : a.ledger; }

// Reading commands do not create a ledger: a missing one is an error naming it.
Result<billing::Ledger> open_existing(const BillingArgs& a) {
  std::string p = ledger_path(a);
  if (!fs::exists(p)) return Error::make(ErrorKind::NotFound, "ledger " + p + ": not found (envrun meterd creates it)");
  return billing::Ledger::open(p);
}

Result<int64_t> time_arg(const std::string& opt, const std::string& v) {
  auto t = metering::parse_time_ms(v);
  if (!t) return Error::make(ErrorKind::Usage, opt + " " + t.error().message);
  return *t;
}

Result<int> do_export(const BillingArgs& a) {
  auto fmt = a.format == "json" ? billing::ExportFormat::Json : billing::ExportFormat::Csv;
  std::optional<billing::Plan> plan;
  if (!a.plan.empty()) plan = ENVRUN_TRY(billing::load_plan(a.plan));
  auto ledger = ENVRUN_TRY(open_existing(a));
  if (a.since_last) {
    if (!a.from.empty() || !a.to.empty()) return Error::make(ErrorKind::Usage, "--since-last takes no --from/--to");
    billing::SinceLastOptions o;
    o.stream = a.stream;
    o.granularity_ms = parse_duration_ms(a.granularity);
    if (o.granularity_ms < 1000) return Error::make(ErrorKind::Usage, "--granularity " + a.granularity + ": expected a duration like 1h");
    o.grace_ms = parse_duration_ms(a.grace);
    if (o.grace_ms < 0) return Error::make(ErrorKind::Usage, "--grace " + a.grace + ": expected a duration like 60s");
    const billing::Plan* p = plan ? &*plan : nullptr;
    auto pending = a.out.empty() ? ENVRUN_TRY(billing::export_since_last(ledger, now_ms(), o, p, fmt))
                                 : ENVRUN_TRY(billing::export_since_last_to_file(ledger, now_ms(), o, p, fmt, a.out));
    if (a.out.empty()) std::fputs(pending.text().c_str(), stdout), std::fflush(stdout);
    ENVRUN_CHECK(pending.commit());
    log::debug("billing: exported [" + billing::rfc3339(pending.from_ms()) + ", " + billing::rfc3339(pending.to_ms()) + ")");
    return 0;
  }
  if (a.from.empty() || a.to.empty()) return Error::make(ErrorKind::Usage, "export needs --from and --to (UTC, RFC 3339), or --since-last");
  int64_t from = ENVRUN_TRY(time_arg("--from", a.from)), to = ENVRUN_TRY(time_arg("--to", a.to));
  if (to <= from) return Error::make(ErrorKind::Usage, "--to must be after --from");
  std::string text = ENVRUN_TRY(billing::export_window(ledger, from, to, plan ? &*plan : nullptr, fmt));
  if (a.out.empty()) {
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  ENVRUN_CHECK(fs::atomic_write(a.out, text, 0644, true));
  return 0;
}

Result<int> do_usage(const BillingArgs& a) {
  auto ledger = ENVRUN_TRY(open_existing(a));
  std::optional<std::string> inst;
  if (!a.instance.empty()) {
    inst = a.instance;
    auto all = ENVRUN_TRY(ledger.instances());
    bool known = false;
    for (const auto& i : all) known |= i.instance == a.instance;
    if (!known) return Error::make(ErrorKind::NotFound, "instance " + a.instance + ": not in the ledger " + ledger.path());
  }
  std::string text = a.usage_format == "prometheus" ? ENVRUN_TRY(billing::prometheus_text(ledger, now_ms()))
                                                    : ENVRUN_TRY(billing::usage_table(ledger, inst));
  std::fputs(text.c_str(), stdout);
  return 0;
}

volatile sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }

// A minimal HTTP/1.0 endpoint for Prometheus: GET /metrics, one request per connection.
Result<int> do_serve(const BillingArgs& a) {
  auto colon = a.listen.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  int port = colon == std::string::npos ? -1 : std::atoi(a.listen.c_str() + colon + 1);
  if (port <= 0 || port > 65535 || ::inet_pton(AF_INET, a.listen.substr(0, colon).c_str(), &sa.sin_addr) != 1)
    return Error::make(ErrorKind::Usage, "--listen " + a.listen + ": expected IPv4:PORT");
  sa.sin_port = htons(uint16_t(port));
  auto ledger = ENVRUN_TRY(open_existing(a));
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return Error::sys("--listen " + a.listen);
  if (::listen(s.get(), 16) != 0) return Error::sys("listen");
  struct sigaction act {};
  act.sa_handler = on_stop;
  for (int sig : {SIGINT, SIGTERM}) ::sigaction(sig, &act, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  std::fprintf(stderr, "envrun billing: serving http://%s/metrics\n", a.listen.c_str());
  while (!g_stop) {
    UniqueFd c(::accept4(s.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) continue;
    timeval tv{5, 0};
    ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[2048];
    ssize_t n = ::recv(c.get(), req, sizeof req - 1, 0);
    if (n <= 0) continue;
    req[n] = 0;
    std::string line(req, strnlen(req, size_t(n)));
    line = line.substr(0, line.find('\r'));
    std::string status = "200 OK", type = "text/plain; version=0.0.4", body;
    if (line.rfind("GET /metrics ", 0) == 0 || line == "GET /metrics") {
      auto t = billing::prometheus_text(ledger, now_ms());
      if (t) body = *t;
      else status = "500 Internal Server Error", type = "text/plain", body = t.error().message + "\n";
    } else {
      status = "404 Not Found", type = "text/plain", body = "only GET /metrics is served\n";
    }
    std::string resp = "HTTP/1.0 " + status + "\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nConnection: close\r\n\r\n" + body;
    for (size_t off = 0; off < resp.size();) {
      ssize_t w = ::send(c.get(), resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += size_t(w);
    }
  }
  return 0;
}

}  // namespace

void add_billing(CLI::App& app, Globals& g) {
  static BillingArgs a;
  auto* top = app.add_subcommand("billing", "usage ledger: export billing rows, show usage, serve Prometheus metrics");
  top->require_subcommand(1);
  top->add_option("--ledger", a.ledger, "ledger file (default: $ENVRUN_LEDGER, else " + billing::default_ledger_path() + ")");

  auto* ex = top->add_subcommand("export", "billing rows for a window, one per bundle and metric (FOCUS columns)");
  ex->add_option("--from", a.from, "window start, UTC RFC 3339 (2026-11-25T00:00:00Z), included");
  ex->add_option("--to", a.to, "window end, UTC RFC 3339, excluded");
  ex->add_flag("--since-last", a.since_last, "from where the last --since-last export of --stream ended, to the last full --granularity");
  ex->add_option("--stream", a.stream, "name of the --since-last mark (one per consumer)")->capture_default_str();
  ex->add_option("--granularity", a.granularity, "--since-last windows end on multiples of this (UTC)")->capture_default_str();
  ex->add_option("--grace", a.grace, "--since-last leaves out the last GRACE (usage not yet recorded by the collector)")->capture_default_str();
  ex->add_option("--plan", a.plan, "pricing plan YAML (envrun-billing(5)); without it every price is 0");
  ex->add_option("--format", a.format, "csv or json")->check(CLI::IsMember({"csv", "json"}))->capture_default_str();
  ex->add_option("--out", a.out, "write to FILE (temp file + rename; --since-last marks the window only once it is written)");
  on_run(ex, g, "billing export", nullptr, [] { return do_export(a); });

  auto* us = top->add_subcommand("usage", "usage per instance: lifetime totals and peaks");
  us->add_option("id", a.instance, "one instance (container id)");
  us->add_option("--format", a.usage_format, "table or prometheus")->check(CLI::IsMember({"table", "prometheus"}))->capture_default_str();
  on_run(us, g, "billing usage", &a.instance, [] { return do_usage(a); });

  auto* sv = top->add_subcommand("serve", "serve the ledger's totals as Prometheus metrics (GET /metrics)");
  sv->add_option("--listen", a.listen, "IPv4:PORT")->capture_default_str();
  on_run(sv, g, "billing serve", nullptr, [] { return do_serve(a); });

  auto* cp = top->add_subcommand("check-plan", "check a pricing plan file");
  cp->add_option("plan", a.plan, "pricing plan YAML")->required();
  on_run(cp, g, "billing check-plan", nullptr, [] () -> Result<int> {
    auto p = ENVRUN_TRY(billing::load_plan(a.plan));
    std::printf("%s: ok (%s)\n", a.plan.c_str(), p.currency.c_str());
    return 0;
  });
}

}  // namespace envrun::cli
