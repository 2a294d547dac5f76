// kill, delete, pause, resume, update, stats, pids.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "kernel/process.hpp"
#include "runtime/container.hpp"
#include "runtime/container_internal.hpp"
#include "runtime/hooks.hpp"

namespace envrun::runtime {
namespace {

// Signal the init through a pidfd opened after checking its start time (no pid reuse).
Result<void> signal_init(const ContainerState& st, int sig) {
  auto pidfd = proc::pidfd_open(st.pid);
  if (!pidfd) return ok();  // already gone
  if (!proc::alive(st.pid, st.pid_start)) return ok();
  return proc::pidfd_signal(pidfd->get(), sig);
}

Result<void> signal_all(CgroupManager& cg, int sig) {
  auto pids = ENVRUN_TRY(cg.pids());
  for (pid_t p : pids)
    if (::kill(p, sig) != 0 && errno != ESRCH) return Error::sys("kill " + std::to_string(p));
  return ok();
}

// SIGKILL everything in the container and wait (bounded) until the cgroup is empty.
Result<void> kill_everything(const ContainerState& st, CgroupManager& cg) {
  bool frozen = cg.is_frozen().value_or(false);
  (void)signal_init(st, SIGKILL);
  (void)signal_all(cg, SIGKILL);
  if (frozen) (void)cg.thaw();  // a frozen task only dies once thawed
  auto pidfd = proc::pidfd_open(st.pid);
  if (pidfd) proc::wait_exit(pidfd->get(), 5000);
  for (int i = 0; i < 500; ++i) {
    auto pids = cg.pids();
    if (!pids || pids->empty()) return ok();
    (void)signal_all(cg, SIGKILL);
    ::usleep(10000);
  }
  return Error::make(ErrorKind::System, "processes of container \"" + st.id + "\" did not die after SIGKILL");
}

}  // namespace

Result<void> kill_container(const StateStore& store, const std::string& id, int sig, bool all) {
  auto st = ENVRUN_TRY(load_in_status(store, id, {Status::Created, Status::Running, Status::Paused}, "kill"));
  if (!all) return signal_init(st, sig);
  auto cg = ENVRUN_TRY(cgroup_of(st));
  ENVRUN_CHECK(signal_all(*cg, sig));
  return signal_init(st, sig);
}

Result<void> delete_container(const StateStore& store, const std::string& id, bool force) {
  auto loaded = store.load(id);
  // A state dir without state.json is what a `create` killed half-way leaves (its init
  // died with it: PR_SET_PDEATHSIG). --force clears it so that the id can be used again.
  if (!loaded && loaded.error().kind == ErrorKind::NotFound && force && fs::is_dir(store.dir(id))) {
    log::warn("delete " + id + ": removing the state of a create that did not finish");
    return fs::remove_tree(store.dir(id));
  }
  auto st = ENVRUN_TRY(std::move(loaded));
  Status s = store.status(st);
  // Like runc: a created container (its process never ran) may go without --force.
  if (s != Status::Stopped && s != Status::Created && !force)
    return Error::make(ErrorKind::State, "cannot delete container \"" + id + "\": it is " + status_name(s) +
                                             " (stop it first, or use --force)");
  auto cg = ENVRUN_TRY(cgroup_of(st));
  // Without its own pid namespace a container's other processes outlive its init.
  if (s != Status::Stopped || !st.own_pidns) ENVRUN_CHECK(kill_everything(st, *cg));
  // Reap the init if it is our child (foreground run); harmless otherwise.
  if (st.pid > 0) ::waitpid(st.pid, nullptr, WNOHANG);
  log::debug("delete " + id + ": removing cgroups");
  ENVRUN_CHECK(cg->destroy());
  auto spec = container_spec(store, st);
  if (spec) {
    auto hooks = run_hooks(spec->hooks.poststop, "poststop", oci_state_json(st, Status::Stopped).dump());
    if (!hooks) log::warn(hooks.error().message);  // the spec: poststop failures are logged, not fatal
  }
  auto removed = fs::remove_tree(store.dir(id));
  log::debug("delete " + id + ": done");
  return removed;
}

Result<void> pause_container(const StateStore& store, const std::string& id) {
  auto st = ENVRUN_TRY(load_in_status(store, id, {Status::Running, Status::Created}, "pause"));
  auto cg = ENVRUN_TRY(cgroup_of(st));
  return cg->freeze();
}

Result<void> resume_container(const StateStore& store, const std::string& id) {
  auto st = ENVRUN_TRY(load_in_status(store, id, {Status::Paused}, "resume"));
  auto cg = ENVRUN_TRY(cgroup_of(st));
  return cg->thaw();
}

Result<void> update_container(const StateStore& store, const std::string& id, const oci::Resources& res) {
  auto st = ENVRUN_TRY(load_in_status(store, id, {Status::Created, Status::Running, Status::Paused}, "update"));
  auto cg = ENVRUN_TRY(cgroup_of(st));
  return cg->apply(res);
}

Result<nlohmann::json> container_stats(const StateStore& store, const std::string& id) {
  auto st = ENVRUN_TRY(load_in_status(store, id, {Status::Created, Status::Running, Status::Paused}, "get stats of"));
  auto cg = ENVRUN_TRY(cgroup_of(st));
  auto data = ENVRUN_TRY(cg->stats());
  return nlohmann::json{{"type", "stats"}, {"id", id}, {"data", data}};
}

Result<std::vector<pid_t>> container_pids(const StateStore& store, const std::string& id) {
  auto st = ENVRUN_TRY(load_in_status(store, id, {Status::Created, Status::Running, Status::Paused}, "list processes of"));
  auto cg = ENVRUN_TRY(cgroup_of(st));
  return cg->pids();
}

}  // namespace envrun::runtime
