// The options of `envrun pull`, declared once for the envrun command (cmd_pull.cpp) and
// for the envrun-pull helper that does the work (pull/main.cpp).
#pragma once
#include <CLI/CLI.hpp>

#include "bundle/registry_pull.hpp"

namespace envrun::cli {

inline void add_pull_options(CLI::App* sub, registry::PullOptions& o) {
  sub->add_option("reference", o.reference, "image: [host[:port]/]name[:tag][@sha256:digest]")->required();
  sub->add_option("-b,--bundle", o.bundle, "bundle directory to create (default: the image name)");
  sub->add_option("--platform", o.platform, "OS/ARCH[/VARIANT] picked from an index (default: this host's)");
  sub->add_option("-j,--jobs", o.jobs, "parallel layer downloads")->capture_default_str()->check(CLI::Range(1, 64));
  sub->add_flag("--insecure", o.insecure, "allow plain HTTP and unverified TLS certificates for this registry");
  sub->add_flag("--json", o.json, "progress events on stdout, one JSON object per line (envrun(1))");
  sub->add_flag("-q,--quiet", o.quiet, "no progress display and no summary line, only errors");
  sub->add_option("--authfile", o.authfile, "credentials file (default: $REGISTRY_AUTH_FILE, else envrun login's)");
  sub->add_option("--store", o.store, "content store (default: /var/lib/envrun, or $XDG_DATA_HOME/envrun)");
}

}  // namespace envrun::cli
