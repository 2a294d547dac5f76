// Rolling an instance of a library bundle onto another version (issue 8):
//   Restart:    stop (SIGTERM, bounded wait, SIGKILL), delete, create+start the same id from
//               the new version dir.
//   Checkpoint: checkpoint the instance, restore it with -b NEWDIR (the new config, intercept,
//               limits); refused when the files its processes map or hold open differ between
//               the old and new rootfs.
//   Auto:       Checkpoint when the rootfs differs only in files no process has open or mapped,
//               else Restart.
// Then the health check (exec in the container, or HTTP GET; bounded); on failure the new one
// is stopped and the old version brought back (the checkpoint restored, or restarted from the
// old dir), and the result says rolled_back with the reason.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "kernel/result.hpp"

namespace envrun::agent {

struct HealthCheck {
  std::vector<std::string> exec;  // argv run inside the container (envrun exec); exit 0 = healthy
  std::string http;               // http://HOST:PORT/PATH; 2xx/3xx = healthy
  int timeout_s = 10;             // the check is retried until it passes or this elapses
};

enum class UpgradeMode { Auto, Restart, Checkpoint };
const char* upgrade_mode_name(UpgradeMode m);
Result<UpgradeMode> parse_upgrade_mode(const std::string& s);

struct UpgradeResult {
  bool upgraded = false;
  bool rolled_back = false;
  int from_version = 0;
  int to_version = 0;
  std::string mode_used;  // "restart" | "checkpoint"
  std::string message;
  double downtime_ms = 0;
};

// agent_dir: the agent's DIR (library in DIR/library, instances in DIR/state).
// to_version <= 0: the bundle's current version.
Result<UpgradeResult> upgrade_instance(const std::string& agent_dir, const std::string& id,
                                       int to_version, UpgradeMode mode, const HealthCheck& health,
                                       std::function<void(const std::string&)> progress);

}  // namespace envrun::agent
