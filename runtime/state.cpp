#include "runtime/state.hpp"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "kernel/process.hpp"
#include "runtime/cgroup.hpp"

namespace envrun::runtime {

const char* status_name(Status s) {
  switch (s) {
    case Status::Creating: return "creating";
    case Status::Created: return "created";
    case Status::Running: return "running";
    case Status::Paused: return "paused";
    case Status::Stopped: return "stopped";
  }
  return "unknown";
}


Result<void> StateStore::validate_id(const std::string& id) {
  if (id.empty()) return Error::make(ErrorKind::Usage, "container id must not be empty");
  if (id.size() > 1024) return Error::make(ErrorKind::Usage, "container id is longer than 1024 characters");
  if (id == "." || id == "..") return Error::make(ErrorKind::Usage, "invalid container id \"" + id + "\"");
  for (unsigned char c : id) {
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '+'))
      return Error::make(ErrorKind::Usage,
                         "invalid container id \"" + id + "\": only letters, digits and _ . + - are allowed");
  }
  return ok();
}

Result<ContainerState> StateStore::load(const std::string& id) const {
  ENVRUN_CHECK(validate_id(id));
  auto text = fs::read_file(dir(id) + "/state.json");
  if (!text) {
    if (text.error().sys_errno == ENOENT)
      return Error::make(ErrorKind::NotFound, "container \"" + id + "\" does not exist");
    return std::move(text).error();
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error::make(ErrorKind::Generic, dir(id) + "/state.json: corrupt state file");
  ContainerState st;
  st.id = j.value("id", id);
  st.pid = j.value("pid", 0);
  st.pid_start = j.value("pid_start", uint64_t(0));
  st.bundle = j.value("bundle", "");
  st.rootfs = j.value("rootfs", "");
  st.created = j.value("created", "");
  st.owner = j.value("owner", "");
  st.cgroup_path = j.value("cgroup_path", "");
  st.own_pidns = j.value("own_pidns", false);
  if (j.contains("annotations") && j["annotations"].is_object())
    for (auto& [k, v] : j["annotations"].items())
      if (v.is_string()) st.annotations[k] = v.get<std::string>();
  if (j.contains("config")) st.config_json = j["config"].dump();
  return st;
}

Result<void> StateStore::save(const ContainerState& st, bool durable) const {
  nlohmann::json j = {{"id", st.id},           {"pid", st.pid},
                      {"pid_start", st.pid_start}, {"bundle", st.bundle},
                      {"rootfs", st.rootfs},   {"created", st.created},
                      {"owner", st.owner},     {"cgroup_path", st.cgroup_path},
                      {"own_pidns", st.own_pidns},
                      {"annotations", st.annotations}};
  if (!st.config_json.empty()) j["config"] = nlohmann::json::parse(st.config_json, nullptr, false);
  return fs::atomic_write(dir(st.id) + "/state.json", j.dump(), 0600, durable);
}

std::vector<std::string> StateStore::ids() const {
  std::vector<std::string> out;
  for (auto& name : fs::list_dir(root_))
    if (fs::exists(dir(name) + "/state.json")) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

Status StateStore::status(const ContainerState& st) const {
  if (st.pid == 0) return Status::Creating;  // create's placeholder: still running, or killed half-way
  if (!proc::alive(st.pid, st.pid_start)) return Status::Stopped;
  if (fs::exists(start_socket_path(st.id))) return Status::Created;
  // Paused: the container's cgroup is frozen (v1 freezer, or cgroup.freeze where v2 is used).
  if (!st.cgroup_path.empty()) {
    auto mounts = CgroupMounts::detect();
    if (mounts && CgroupManager::is_frozen_at(*mounts, st.cgroup_path).value_or(false)) return Status::Paused;
  }
  return Status::Running;
}

nlohmann::json oci_state_json(const ContainerState& st, Status s) {
  nlohmann::json j = {{"ociVersion", kOciVersion}, {"id", st.id}, {"status", status_name(s)},
                      {"pid", s == Status::Stopped ? 0 : st.pid}, {"bundle", st.bundle},
                      {"rootfs", st.rootfs},       {"created", st.created}, {"owner", st.owner}};
  j["annotations"] = st.annotations;
  return j;
}

}  // namespace envrun::runtime
