// envrun exec --meter -- CMD [ARGS...]: run a host command as a metered instance. It is a
// transient container in "intercept" isolation (no namespaces, no rootfs: the command sees
// the host as it is) with its own cgroup and the interception library's meter counters; it
// runs in the foreground, and when it exits its usage is recorded in the ledger (created if
// needed) like any instance's, then the instance is deleted.
#include <unistd.h>

#include <cstdio>

#include "bundle/spec_parser.hpp"
#include "cli/exec_meter.hpp"
#include "cli/metering.hpp"
#include "kernel/fs.hpp"
#include "runtime/container.hpp"

extern char** environ;

namespace envrun::cli {

Result<int> exec_metered(Globals& g, const std::vector<std::string>& args, std::string id, std::string bundle_name) {
  if (args.empty()) return Error::make(ErrorKind::Usage, "no command given (envrun exec --meter [--name ID] -- CMD [ARGS...])");
  if (id.empty()) id = "meter-" + std::to_string(::getpid());
  ENVRUN_CHECK(runtime::StateStore::validate_id(id));
  if (bundle_name.empty()) bundle_name = args[0].substr(args[0].find_last_of('/') + 1);
  char cwd[4096];
  if (!::getcwd(cwd, sizeof cwd)) return Error::sys("getcwd");
  auto spec = bundle::default_spec_json(::geteuid() != 0, ::geteuid(), ::getegid());
  spec["root"] = {{"path", "/"}};
  spec["process"]["args"] = args;
  spec["process"]["cwd"] = cwd;
  spec["process"]["terminal"] = false;
  spec["process"]["env"] = nlohmann::json::array();
  for (char** e = environ; *e; ++e) spec["process"]["env"].push_back(*e);
  spec["process"]["user"] = {{"uid", ::geteuid()}, {"gid", ::getegid()}};
  spec["envrun"] = {{"isolation", "intercept"}};
  spec["annotations"] = {{"envrun.billing.bundle", bundle_name}};

  auto store = g.store();
  ENVRUN_CHECK(fs::mkdir_p(store.root()));
  std::string bundle = store.root() + "/.meter-" + id;
  ENVRUN_CHECK(fs::mkdir_p(bundle));
  struct Cleanup {
    std::string dir;
    ~Cleanup() { (void)fs::remove_tree(dir); }
  } cleanup{bundle};
  ENVRUN_CHECK(fs::atomic_write(bundle + "/config.json", spec.dump(2) + "\n", 0644, false));
  runtime::CreateOptions o;
  o.id = id;
  o.bundle = bundle;
  auto c = ENVRUN_TRY(runtime::create_container(store, o, true));
  auto started = runtime::start_container(store, id);
  if (!started) {
    (void)metering::delete_metered(store, id, true, true);
    return std::move(started).error();
  }
  auto status = runtime::wait_container(c.state.pid, c.console_master);
  ENVRUN_CHECK(metering::delete_metered(store, id, true, true));
  return status;
}

}  // namespace envrun::cli
