// validate_bundle_dir: what create would refuse, found before a version is accepted.
#include <cstdlib>

#include "agent/library.hpp"
#include "billing/bundle_billing.hpp"
#include "bundle/intercept_db.hpp"
#include "bundle/spec_parser.hpp"
#include "kernel/fs.hpp"

namespace envrun::agent {

Result<void> validate_bundle_dir(const std::string& dir) {
  if (!fs::is_dir(dir)) return Error::make(ErrorKind::Config, dir + ": not a directory");
  bool has_config = false;
  for (const char* f : {"config.json", "config.yaml", "config.yml"}) has_config = has_config || fs::exists(dir + "/" + f);
  if (!has_config) return Error::make(ErrorKind::Config, "config.json: missing (neither config.json nor config.yaml in the bundle)");
  auto spec = ENVRUN_TRY(bundle::load_spec(dir));
  std::string cfg = fs::exists(dir + "/config.json") ? "config.json" : "config.yaml";
  // A version must hold its rootfs: an absolute root.path would point outside it.
  if (!spec.root.path.empty() && spec.root.path[0] == '/')
    return Error::make(ErrorKind::Config, cfg + ": root.path: \"" + spec.root.path +
                                              "\" is absolute: a library bundle keeps its rootfs inside the bundle (use a relative path)");
  std::string rootfs = bundle::rootfs_path(spec, dir);
  if (!fs::is_dir(rootfs))
    return Error::make(ErrorKind::Config, cfg + ": root.path: \"" + spec.root.path + "\" is not a directory in the bundle");
  if (fs::exists(dir + "/intercept.yaml")) {
    const char* home = std::getenv("HOME");
    bundle::InterceptVars vars{dir, rootfs, home ? home : "/root", "check", dir + "/.state"};
    auto text = ENVRUN_TRY(fs::read_file(dir + "/intercept.yaml"));
    ENVRUN_CHECK(bundle::parse_intercept_yaml(text, "intercept.yaml", vars));
  }
  if (fs::exists(dir + "/envrun.yaml")) {
    auto text = ENVRUN_TRY(fs::read_file(dir + "/envrun.yaml"));
    ENVRUN_CHECK(billing::parse_bundle_billing(text, "envrun.yaml"));
  }
  return ok();
}

}  // namespace envrun::agent
