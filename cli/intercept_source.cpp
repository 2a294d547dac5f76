// Finding the intercept.yaml of `envrun intercept compile|check|explain` and its variables.
#include "cli/intercept_source.hpp"

#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "bundle/spec_parser.hpp"
#include "intercept/db_view.hpp"
#include "kernel/fs.hpp"
#include "kernel/process.hpp"
#include "runtime/intercept_setup.hpp"

namespace envrun::cli {

namespace {

std::string absolute(const std::string& p) {
  if (!p.empty() && p[0] == '/') return fs::normalize(p);
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return fs::normalize(p);
  return fs::normalize(fs::join(cwd, p));
}

bool has_config(const std::string& bundle) {
  for (const char* name : {"config.json", "config.yaml", "config.yml"})
    if (fs::exists(fs::join(bundle, name))) return true;
  return false;
}

}  // namespace

Result<InterceptModel> load_intercept_model(const InterceptSource& src) {
  InterceptModel m;
  std::string bundle;
  if (fs::is_dir(src.arg)) {
    bundle = absolute(src.arg);
    if (fs::exists(bundle + "/intercept.yaml")) m.yaml = bundle + "/intercept.yaml";
  } else if (fs::exists(src.arg)) {
    m.yaml = src.arg;
    std::string abs = absolute(src.arg);
    bundle = abs.substr(0, abs.rfind('/'));
    if (bundle.empty()) bundle = "/";
  } else {
    return Error::make(ErrorKind::Usage, src.arg + ": no such bundle directory or intercept.yaml");
  }

  bool both = false;
  std::string rootfs = fs::join(bundle, "rootfs");
  if (has_config(bundle)) {
    auto spec = ENVRUN_TRY(bundle::load_spec(bundle));
    rootfs = bundle::rootfs_path(spec, bundle);
    both = spec.envrun.isolation == "both";
  }
  std::string state = absolute(fs::join(fs::join(src.root, src.id), runtime::kInterceptDirName));
  m.vars = {bundle, both ? "/" : rootfs, proc::home_dir(), src.id, both ? runtime::kInterceptMountPoint : state};
  if (!src.state_override.empty()) m.vars.state = absolute(src.state_override);

  if (m.yaml.empty()) {
    m.db = bundle::default_intercept_db();
    return m;
  }
  m.db = ENVRUN_TRY(bundle::load_intercept_yaml(m.yaml, m.vars));
  return m;
}

Result<std::string> compile_intercept_model(const InterceptModel& m) {
  std::string bytes = bundle::compile_intercept_db(m.db);
  if (bytes.size() > idb::kMaxTotalSize)
    return Error::make(ErrorKind::Config, m.db.source + ": the compiled database would be " + std::to_string(bytes.size()) +
                                              " bytes, more than the " + std::to_string(idb::kMaxTotalSize) + " allowed");
  idb::DbView view;
  if (const char* why = view.open(bytes.data(), bytes.size()))
    return Error::make(ErrorKind::Generic, m.db.source + ": the compiled database does not validate: " + why);
  return bytes;
}

}  // namespace envrun::cli
