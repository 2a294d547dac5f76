// Container state on disk: <root>/<id>/state.json, written crash-safely.
// One file, written once by create (the config is inside it: one fsync). The status is
// computed from the recorded init pid + start time, the start socket (present until `start`)
// the start socket and the freezer, never trusted from the file alone.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/result.hpp"

namespace envrun::runtime {

enum class Status { Creating, Created, Running, Paused, Stopped };
const char* status_name(Status s);

inline constexpr const char* kOciVersion = "1.2.0";
inline constexpr const char* kDefaultRoot = "/run/envrun";

struct ContainerState {
  std::string id;
  pid_t pid = 0;
  uint64_t pid_start = 0;   // /proc/<pid>/stat field 22, guards against pid reuse
  std::string bundle;       // absolute
  std::string rootfs;       // absolute
  std::string created;      // RFC 3339, UTC
  std::string owner;
  std::string cgroup_path;  // resolved, absolute within each hierarchy
  bool own_pidns = false;   // container has its own pid namespace
  std::map<std::string, std::string> annotations;
  std::string config_json;  // the bundle's config as JSON text, recorded at create (exec, delete hooks)
};

class StateStore {
 public:
  explicit StateStore(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }
  std::string dir(const std::string& id) const { return root_ + "/" + id; }
  std::string start_socket_path(const std::string& id) const { return dir(id) + "/start.sock"; }

  // Ids: 1..1024 chars of [A-Za-z0-9_.+-], not "." or "..".
  static Result<void> validate_id(const std::string& id);
  Result<ContainerState> load(const std::string& id) const;  // NotFound when absent
  // durable=false: a placeholder (no fsync) that only has to be good enough for cleanup.
  Result<void> save(const ContainerState& st, bool durable = true) const;
  std::vector<std::string> ids() const;
  Status status(const ContainerState& st) const;

 private:
  std::string root_;
};

// The OCI state document: ociVersion, id, status, pid, bundle, annotations (+ created, owner, rootfs).
nlohmann::json oci_state_json(const ContainerState& st, Status s);

}  // namespace envrun::runtime
