// The instances of an agent: containers in DIR/state, each run from a library version dir
// (DIR/library/NAME/versions/N), so that an instance pins its version. Reads go through the
// state store; every change runs the user's own command (`envrun --root DIR/state run -d
// ...`, `start`, `kill`, `delete`, `checkpoint`) as a child process, as the migration agent
// does: the runtime forks, ptraces and may exit on errors, which must not take the API down.
// A detached instance's stdout goes to DIR/logs/ID.log.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/library.hpp"
#include "billing/cgroup_usage.hpp"
#include "kernel/result.hpp"
#include "runtime/state.hpp"

namespace envrun::agent::api {

class Instances {
 public:
  // dir: the agent's DIR; envrun: the envrun binary run for changes.
  Instances(std::string dir, std::string envrun);

  // {id, bundle, version, bundle_dir, status, pid, created, owner, usage:{cpu_s, mem_bytes}, state}
  Result<nlohmann::json> get(const std::string& id) const;
  std::vector<nlohmann::json> list() const;
  // The library bundle the instance runs from ("" when none, e.g. a migrated container).
  Result<std::string> bundle_of(const std::string& id) const;

  Result<nlohmann::json> create(const std::string& id, const std::string& bundle, int version);
  Result<nlohmann::json> start(const std::string& id);
  Result<nlohmann::json> stop(const std::string& id, int timeout_s);
  Result<nlohmann::json> kill(const std::string& id, const std::string& signal, bool all);
  Result<void> remove(const std::string& id, bool force);
  Result<nlohmann::json> checkpoint(const std::string& id, bool leave_running);

  const runtime::StateStore& store() const { return store_; }
  Library& library() { return lib_; }
  // Held while an instance changes (one change per id at a time).
  std::unique_lock<std::mutex> lock(const std::string& id);

 private:
  nlohmann::json describe(const runtime::ContainerState& st) const;
  Result<void> run_envrun(const std::vector<std::string>& args, const std::string& stdout_file = "") const;
  Result<void> run_detached(const std::string& id, const std::string& bundle_dir) const;
  bool wait_stopped(const std::string& id, int timeout_ms) const;

  std::string dir_, envrun_;
  runtime::StateStore store_;
  Library lib_;
  billing::CgroupHierarchies cgroups_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> locks_;
};

}  // namespace envrun::agent::api
