// list_candidates, plan_drain, plan_sigterm (drain_plan.hpp).
#include "agent/drain_plan.hpp"

#include "runtime/state.hpp"

namespace envrun::agent {

std::vector<Candidate> list_candidates(const AgentRoot& root) {
  std::vector<Candidate> out;
  runtime::StateStore store(root.state());
  for (const auto& id : store.ids()) {
    auto st = store.load(id);
    if (!st) continue;
    auto status = store.status(*st);
    if (status != runtime::Status::Running && status != runtime::Status::Paused) continue;
    Candidate c{id, st->bundle, st->cgroup_path, runtime::status_name(status), {}, {}};
    auto p = bundle::read_migration_policy(st->bundle);
    if (p) c.policy = std::move(*p);
    else c.policy_error = p.error().message;
    out.push_back(std::move(c));
  }
  return out;
}

PlannedMove move_to_peer(const Candidate& c, const std::string& agent_psk) {
  const auto& p = c.policy;
  return {c.id, p.peer, p.psk_file.empty() ? agent_psk : p.psk_file, p.tcp_established};
}

Plan plan_drain(const std::vector<Candidate>& cs, const std::string& to, const std::string& agent_psk) {
  Plan plan;
  for (const auto& c : cs) {
    const auto& p = c.policy;
    if (c.status != "running") {
      plan.stays.push_back({c.id, "it is " + c.status + " (only running containers migrate)"});
    } else if (!c.policy_error.empty()) {
      plan.stays.push_back({c.id, c.policy_error});
    } else if (p.present && !p.has(bundle::MigrationEvent::Drain)) {
      plan.stays.push_back({c.id, "its envrun.yaml migration.on does not list drain"});
    } else if (!to.empty()) {
      plan.moves.push_back({c.id, to, agent_psk, p.tcp_established});
    } else if (p.peer.empty()) {
      plan.stays.push_back({c.id, "no peer to move to (envrun.yaml migration.peer, or drain --to)"});
    } else {
      plan.moves.push_back(move_to_peer(c, agent_psk));
    }
  }
  return plan;
}

Plan plan_sigterm(const std::vector<Candidate>& cs, const std::string& agent_psk) {
  Plan plan;
  for (const auto& c : cs) {
    if (!c.policy.has(bundle::MigrationEvent::Sigterm) || !c.policy_error.empty()) continue;
    if (c.status != "running") plan.stays.push_back({c.id, "it is " + c.status + " (only running containers migrate)"});
    else plan.moves.push_back(move_to_peer(c, agent_psk));
  }
  return plan;
}

}  // namespace envrun::agent
