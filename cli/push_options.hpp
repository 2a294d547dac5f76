// The options of `envrun push`, `envrun login` and `envrun logout`, declared once for the
// envrun command (cmd_push.cpp, cmd_login.cpp) and for the envrun-pull helper that does the
// work (pull/push_main.cpp); helper_args() gives them back as the helper's arguments.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace envrun::cli {

struct PushArgs {
  std::string bundle, reference, store, authfile;
  bool insecure = false, quiet = false;
  std::vector<std::string> helper_args() const {
    std::vector<std::string> a{bundle, reference};
    if (quiet) a.push_back("--quiet");
    if (!store.empty()) a.insert(a.end(), {"--store", store});
    if (!authfile.empty()) a.insert(a.end(), {"--authfile", authfile});
    if (insecure) a.push_back("--insecure");
    return a;
  }
};

struct LoginArgs {
  std::string registry, username, authfile;
  bool password_stdin = false, insecure = false;
  std::vector<std::string> helper_args() const {
    std::vector<std::string> a{registry};
    if (!username.empty()) a.insert(a.end(), {"--username", username});
    if (!authfile.empty()) a.insert(a.end(), {"--authfile", authfile});
    if (password_stdin) a.push_back("--password-stdin");
    if (insecure) a.push_back("--insecure");
    return a;
  }
};

inline void add_push_options(CLI::App* sub, PushArgs& o) {
  sub->add_option("bundle", o.bundle, "bundle directory (config.json, rootfs/, intercept.yaml)")->required();
  sub->add_option("reference", o.reference, "where to: [host[:port]/]name[:tag]")->required();
  sub->add_flag("--insecure", o.insecure, "allow plain HTTP and unverified TLS certificates for this registry");
  sub->add_option("--store", o.store, "content store keeping the packed layer (default: /var/lib/envrun, or $XDG_DATA_HOME/envrun)");
  sub->add_option("--authfile", o.authfile, "credentials file (default: $REGISTRY_AUTH_FILE, else envrun login's)");
  sub->add_flag("-q,--quiet", o.quiet, "no progress lines and no summary line, only errors");
}

// login: logout uses the registry and --authfile only.
inline void add_login_options(CLI::App* sub, LoginArgs& o, bool login) {
  sub->add_option("registry", o.registry, "registry host[:port]")->required();
  sub->add_option("--authfile", o.authfile, "credentials file (default: $REGISTRY_AUTH_FILE, else /etc/envrun/auth.json for root, $XDG_CONFIG_HOME/envrun/auth.json)");
  if (!login) return;
  sub->add_option("-u,--username", o.username, "user name (asked on the terminal when missing)");
  sub->add_flag("--password-stdin", o.password_stdin, "read the password from standard input");
  sub->add_flag("--insecure", o.insecure, "allow plain HTTP and unverified TLS certificates for this registry");
}

}  // namespace envrun::cli
