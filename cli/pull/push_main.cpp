// The helper's push, login and logout.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "bundle/registry_auth.hpp"
#include "bundle/registry_client.hpp"
#include "bundle/registry_credentials.hpp"
#include "bundle/registry_push.hpp"
#include "cli/pull/registry_commands.hpp"
#include "cli/push_options.hpp"
#include "kernel/log.hpp"

namespace envrun::cli {
namespace {

struct Logging {
  std::string file, format = "text";
  bool debug = false;
  void add(CLI::App& app) {
    app.add_option("--log", file, "log file");
    app.add_option("--log-format", format, "log format")->check(CLI::IsMember({"text", "json"}));
    app.add_flag("--debug", debug, "enable debug logging");
  }
  void init() const { log::init(file, format == "json", debug); }
};

Result<int> push(const PushArgs& a) {
  registry::PushOptions o{a.bundle, a.reference, a.store, a.authfile, a.insecure, {}};
  if (!a.quiet && ::isatty(2)) o.step = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  auto r = registry::push_bundle(o);
  if (!r) return std::move(r).error().with_context("push " + a.reference);
  if (a.quiet) return 0;
  std::printf("pushed %s to %s: %s, %d blobs uploaded (%llu bytes), %d already there\n", a.bundle.c_str(),
              a.reference.c_str(), r->manifest_digest.c_str(), r->uploaded, (unsigned long long)r->bytes, r->skipped);
  return 0;
}

// A line from the terminal (echo off for passwords), or standard input's first line.
Result<std::string> ask(const std::string& prompt, bool echo) {
  bool tty = ::isatty(0);
  if (!tty) return Error::make(ErrorKind::Usage, prompt + " needed: standard input is not a terminal (use -u and --password-stdin)");
  std::fprintf(stderr, "%s: ", prompt.c_str());
  termios old {};
  ::tcgetattr(0, &old);
  if (!echo) {
    termios t = old;
    t.c_lflag &= ~tcflag_t(ECHO);
    ::tcsetattr(0, TCSAFLUSH, &t);
  }
  std::string line;
  std::getline(std::cin, line);
  if (!echo) {
    ::tcsetattr(0, TCSAFLUSH, &old);
    std::fputc('\n', stderr);
  }
  return line;
}

// Probe the registry with the credentials: a token (Bearer) or /v2/ itself (Basic).
Result<void> check_login(const std::string& host, const registry::Credentials& c, bool insecure) {
  registry::ImageRef ref{host, "", "latest", ""};
  registry::RegistryClient client(ref, insecure);
  client.set_credentials(c);
  ENVRUN_CHECK(client.connect());
  auto r = client.http().get(client.base_url() + "/v2/", client.auth_headers());
  if (!r) return Error::make(ErrorKind::System, client.where() + ": " + r.error().message);
  if (r->status == 401)
    return Error::make(ErrorKind::Generic, client.where() + ": unauthorized: the credentials were refused (HTTP 401)");
  return ok();
}

Result<int> login(const LoginArgs& a) {
  registry::Credentials c{a.username, ""};
  if (c.username.empty()) c.username = ENVRUN_TRY(ask("Username", true));
  if (a.password_stdin) {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) all.pop_back();
    c.password = all;
  } else {
    c.password = ENVRUN_TRY(ask("Password", false));
  }
  if (c.username.empty() || c.password.empty()) return Error::make(ErrorKind::Usage, "empty user name or password");
  ENVRUN_CHECK(check_login(a.registry, c, a.insecure));
  std::string file = registry::auth_file(a.authfile);
  ENVRUN_CHECK(registry::store_credentials(file, a.registry, c));
  std::printf("login succeeded: credentials for %s stored in %s\n", a.registry.c_str(), file.c_str());
  return 0;
}

Result<int> logout(const LoginArgs& a) {
  std::string file = registry::auth_file(a.authfile);
  bool removed = ENVRUN_TRY(registry::remove_credentials(file, a.registry));
  if (!removed) return Error::make(ErrorKind::NotFound, "no credentials stored in " + file);
  std::printf("removed the credentials for %s from %s\n", a.registry.c_str(), file.c_str());
  return 0;
}

}  // namespace

bool is_registry_command(std::string_view n) { return n == "push" || n == "login" || n == "logout"; }

Result<int> run_registry_command(int argc, char** argv) {
  std::string cmd = argv[0];
  CLI::App app{"envrun-pull " + cmd + ": the helper behind `envrun " + cmd + "`", "envrun-pull " + cmd};
  Logging lg;
  lg.add(app);
  PushArgs p;
  LoginArgs l;
  if (cmd == "push") add_push_options(&app, p);
  else add_login_options(&app, l, cmd == "login");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  lg.init();
  if (cmd == "push") return push(p);
  auto r = cmd == "login" ? login(l) : logout(l);
  if (!r) return std::move(r).error().with_context(cmd + " " + l.registry);
  return r;
}

}  // namespace envrun::cli
