// Instances: reads from the state store, changes through envrun child processes.
#include "agent/api/instances.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "ha/subprocess.hpp"
#include "kernel/fs.hpp"
#include "runtime/cgroup.hpp"

namespace envrun::agent::api {

using nlohmann::json;
using runtime::Status;

Instances::Instances(std::string dir, std::string envrun)
    : dir_(std::move(dir)), envrun_(std::move(envrun)), store_(dir_ + "/state"), lib_(dir_) {
  if (auto m = runtime::CgroupMounts::detect()) cgroups_ = {m->v1, m->unified};
}

std::unique_lock<std::mutex> Instances::lock(const std::string& id) {
  std::mutex* m;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto& slot = locks_[id];
    if (!slot) slot = std::make_unique<std::mutex>();
    m = slot.get();
  }
  return std::unique_lock<std::mutex>(*m);
}

json Instances::describe(const runtime::ContainerState& st) const {
  Status s = store_.status(st);
  json j = runtime::oci_state_json(st, s);
  json out{{"id", st.id}, {"bundle", ""}, {"version", 0}, {"bundle_dir", st.bundle},
           {"status", runtime::status_name(s)}, {"pid", j.value("pid", 0)}, {"created", st.created},
           {"owner", st.owner}};
  if (auto v = lib_.owner_of(st.bundle)) {
    out["bundle"] = v->name;
    out["version"] = v->version;
  }
  json usage{{"cpu_s", 0.0}, {"mem_bytes", 0}};
  if (s == Status::Running || s == Status::Paused || s == Status::Created)
    if (auto r = billing::CgroupUsageReader::open(cgroups_, st.cgroup_path))
      if (auto c = r->read()) {
        usage["cpu_s"] = double(c->cpu_user_ns.value_or(0) + c->cpu_system_ns.value_or(0)) / 1e9;
        usage["mem_bytes"] = c->memory_bytes.value_or(0);
      }
  out["usage"] = usage;
  out["state"] = j;
  return out;
}

Result<json> Instances::get(const std::string& id) const {
  auto st = ENVRUN_TRY(store_.load(id));
  return describe(st);
}

std::vector<json> Instances::list() const {
  std::vector<json> out;
  for (const auto& id : store_.ids())
    if (auto st = store_.load(id)) out.push_back(describe(*st));
  return out;
}

Result<std::string> Instances::bundle_of(const std::string& id) const {
  auto st = ENVRUN_TRY(store_.load(id));
  auto v = lib_.owner_of(st.bundle);
  return v ? v->name : std::string();
}

Result<void> Instances::run_envrun(const std::vector<std::string>& args, const std::string& stdout_file) const {
  std::vector<std::string> argv{envrun_, "--root", store_.root()};
  argv.insert(argv.end(), args.begin(), args.end());
  UniqueFd out;
  ha::SpawnSpec spec{argv, {}};
  if (!stdout_file.empty()) {
    out.reset(::open(stdout_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!out) return Error::sys(stdout_file);
    spec.fds.push_back({out.get(), 1});
  }
  auto child = ENVRUN_TRY(ha::Child::spawn(spec));
  int rc = ENVRUN_TRY(child.wait());
  if (rc == 0) return ok();
  // The command's own exit code says what kind of failure it was (envrun(1) EXIT STATUS).
  ErrorKind k = rc == 2 ? ErrorKind::Usage : rc == 3 ? ErrorKind::Config : rc == 4 ? ErrorKind::NotFound
              : rc == 5 ? ErrorKind::State : ErrorKind::Generic;
  return Error::make(k, "envrun " + args.front() + ": " + child.failure_text(rc));
}

Result<void> Instances::run_detached(const std::string& id, const std::string& bundle_dir) const {
  ENVRUN_CHECK(fs::mkdir_p(dir_ + "/logs", 0700));
  return run_envrun({"run", "-d", "-b", bundle_dir, id}, dir_ + "/logs/" + id + ".log");
}

bool Instances::wait_stopped(const std::string& id, int timeout_ms) const {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto st = store_.load(id);
    if (!st || store_.status(*st) == Status::Stopped) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<json> Instances::create(const std::string& id, const std::string& bundle, int version) {
  ENVRUN_CHECK(Library::validate_name(bundle));
  auto v = version > 0 ? lib_.version(bundle, version) : lib_.current(bundle);
  if (!v) return std::move(v).error();
  auto g = lock(id);
  if (store_.load(id)) return Error::make(ErrorKind::State, "instance " + id + " exists");
  ENVRUN_CHECK(run_detached(id, v->dir));
  return get(id);
}

Result<json> Instances::start(const std::string& id) {
  auto g = lock(id);
  auto st = ENVRUN_TRY(store_.load(id));
  Status s = store_.status(st);
  if (s == Status::Created) {
    ENVRUN_CHECK(run_envrun({"start", id}));
  } else if (s == Status::Stopped) {  // run it again from the same version dir
    ENVRUN_CHECK(run_envrun({"delete", id}));
    ENVRUN_CHECK(run_detached(id, st.bundle));
  } else {
    return Error::make(ErrorKind::State, "instance " + id + " is " + runtime::status_name(s));
  }
  return get(id);
}

Result<json> Instances::stop(const std::string& id, int timeout_s) {
  auto g = lock(id);
  auto st = ENVRUN_TRY(store_.load(id));
  Status s = store_.status(st);
  if (s == Status::Stopped) return get(id);
  if (s == Status::Running) {
    (void)run_envrun({"kill", id, "TERM"});
    if (wait_stopped(id, timeout_s * 1000)) return get(id);
  }
  (void)run_envrun({"kill", "--all", id, "KILL"});
  if (!wait_stopped(id, 5000)) return Error::make(ErrorKind::State, "instance " + id + " did not stop after SIGKILL");
  return get(id);
}

Result<json> Instances::kill(const std::string& id, const std::string& signal, bool all) {
  auto g = lock(id);
  ENVRUN_TRY(store_.load(id));
  if (all) ENVRUN_CHECK(run_envrun({"kill", "--all", id, signal}));
  else ENVRUN_CHECK(run_envrun({"kill", id, signal}));
  return get(id);
}

Result<void> Instances::remove(const std::string& id, bool force) {
  auto g = lock(id);
  ENVRUN_TRY(store_.load(id));
  if (force) return run_envrun({"delete", "-f", id});
  return run_envrun({"delete", id});
}

Result<json> Instances::checkpoint(const std::string& id, bool leave_running) {
  auto g = lock(id);
  ENVRUN_TRY(store_.load(id));
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  std::string image = dir_ + "/checkpoints/" + id + "/" + stamp;
  ENVRUN_CHECK(fs::mkdir_p(image, 0700));
  std::vector<std::string> args{"checkpoint", id, "--image-path", image};
  if (leave_running) args.push_back("--leave-running");
  if (auto r = run_envrun(args); !r) {
    (void)fs::remove_tree(image);
    return std::move(r).error();
  }
  auto j = ENVRUN_TRY(get(id));
  j["image"] = image;
  return j;
}

}  // namespace envrun::agent::api
