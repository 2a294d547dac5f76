// `envrun intercept compile|check|explain BUNDLE_OR_YAML`: which intercept.yaml, and the
// values of its variables, as `envrun create` would use them for that bundle.
#pragma once
#include <string>

#include "bundle/intercept_db.hpp"
#include "kernel/result.hpp"

namespace envrun::cli {

struct InterceptSource {
  std::string arg;            // as given on the command line
  std::string state_override; // --state (empty: as create would choose)
  std::string id = "compile"; // --id
  std::string root;           // --root of envrun (state dirs live under it)
};

struct InterceptModel {
  bundle::InterceptDb db;
  bundle::InterceptVars vars;
  std::string yaml;  // the file read; empty when the bundle has none (default database)
};

// A bundle directory (its intercept.yaml, or the default database when it has none) or a
// yaml file (its directory is the bundle). ROOTFS from the bundle's config root.path (or
// BUNDLE/rootfs without a config); STATE = <root>/<id>/intercept, or for isolation `both`
// ROOTFS=/ and STATE=/.envrun (the paths seen inside the container), like create.
// Errors: Usage when the argument names nothing, Config for the yaml or the config.
Result<InterceptModel> load_intercept_model(const InterceptSource& src);

}  // namespace envrun::cli

namespace envrun::cli {

// The binary form of m.db, checked: within idb::kMaxTotalSize (else a Config error) and
// accepted by idb::DbView.
Result<std::string> compile_intercept_model(const InterceptModel& m);

}  // namespace envrun::cli
