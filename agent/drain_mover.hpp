// Mover: moves one of the agent's containers to another agent by running
//   envrun --root ROOT/state migrate ID --to PEER --psk-file F [--tcp-established] --json
// as a child process (the user's own command, as the agent's restores are: a failure
// there cannot take the agent down; migrate rolls back itself, so a failed move leaves the
// container running here). Shared by the drain, the SIGTERM moves and the policy thread:
// one move per container at a time (a second request for it fails at once).
#pragma once
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/agent_root.hpp"
#include "agent/drain_plan.hpp"

namespace envrun::agent {

struct MoveOutcome {
  bool ok = false;
  std::string text;  // "moved to P (pid N there; downtime D ms, total T ms)" or the reason it failed
};

class Mover {
 public:
  Mover(AgentRoot root, std::vector<std::string> envrun_globals)
      : root_(std::move(root)), globals_(std::move(envrun_globals)) {}
  // tick() runs every 2 s while the migration runs (keep-alives to a drain client).
  MoveOutcome move(const PlannedMove& m, const std::function<void()>& tick = {});
  // The containers being moved now.
  std::set<std::string> busy();

 private:
  MoveOutcome run(const PlannedMove& m, const std::function<void()>& tick);
  AgentRoot root_;
  std::vector<std::string> globals_;
  std::mutex mu_;
  std::set<std::string> busy_;
};

}  // namespace envrun::agent
