// Which of the agent's containers move where, for a drain, a SIGTERM or a policy: the
// running containers under the agent's state root with the migration policy of their
// bundle (bundle/migration_policy.hpp). Pure functions over a listing, so that the rules
// are tested without containers.
#pragma once
#include <string>
#include <vector>

#include "agent/agent_root.hpp"
#include "bundle/migration_policy.hpp"

namespace envrun::agent {

struct Candidate {
  std::string id;
  std::string bundle;
  std::string cgroup_path;
  std::string status;          // "running", "paused", ...
  bundle::MigrationPolicy policy;
  std::string policy_error;    // envrun.yaml unreadable or invalid (checked at create; edited since?)
};

struct PlannedMove {
  std::string id;
  std::string to;
  std::string psk_file;
  bool tcp_established = false;
};
struct Stay {
  std::string id;
  std::string reason;
};
struct Plan {
  std::vector<PlannedMove> moves;
  std::vector<Stay> stays;
};

// The containers of the state root that are running or paused, with their policies.
std::vector<Candidate> list_candidates(const AgentRoot& root);

// A drain moves every running container: to `to` when given, else to its policy's peer.
// It stays when it is paused, its envrun.yaml is broken, its policy's `on` lacks drain, or
// it has no peer. agent_psk is the key used where the policy names none (and with `to`).
Plan plan_drain(const std::vector<Candidate>& cs, const std::string& to, const std::string& agent_psk);
// At SIGTERM: the running containers whose policy has `sigterm` (others are not listed).
Plan plan_sigterm(const std::vector<Candidate>& cs, const std::string& agent_psk);
// The move of one container to its policy's peer.
PlannedMove move_to_peer(const Candidate& c, const std::string& agent_psk);

}  // namespace envrun::agent
