// Event-driven migration in the agent (`envrun serve`), issue 7:
//   - `envrun drain` (op "drain" in Begin, frames DrainPlan..DrainDone of ha/frame.hpp):
//     every running container moves, to drain --to or to its policy's peer (drain_plan.hpp),
//     one after the other; progress lines and one result per container go back to the
//     client; a container that cannot move keeps running here. --dry-run: the plan only.
//     A drain stops starting migrations when the agent is told to stop or the client leaves.
//   - the policy thread (policy_watch.hpp): memory or CPU pressure above a threshold;
//   - SIGTERM to the agent: the containers whose policy has `sigterm` move before it exits;
//     no new migration starts after sigterm_timeout_ms (one under way is waited for: it
//     either commits or rolls back, never half-moves). Others are left running.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/drain_mover.hpp"
#include "agent/policy_watch.hpp"
#include "ha/channel.hpp"

namespace envrun::agent {

struct DrainConfig {
  AgentRoot root;
  std::string psk_file;                     // the agent's key file: default key of its migrations
  std::vector<std::string> envrun_globals;  // for the migrate commands (--log ...)
  int sigterm_timeout_ms = 300000;
  int policy_interval_ms = 1000;
  std::function<void(const std::string&)> log;
  std::string self;  // the agent's own --listen ADDR:PORT: a policy naming it is not acted on
};

class Drainer {
 public:
  explicit Drainer(DrainConfig c);
  ~Drainer();
  // Starts the policy thread. stop_fd: readable while the agent is told to stop (its
  // signalfd; polled, never read here).
  Result<void> start(int stop_fd);
  // Serves op "drain" on a channel whose Begin message is `begin`; returns the log line.
  Result<std::string> serve(ha::Channel& ch, const nlohmann::json& begin);
  // The agent stops: the policy thread ends; on SIGTERM the `sigterm` moves run.
  void stop(bool sigterm);

 private:
  bool stop_pending() const;
  void log(const std::string& s) const {
    if (cfg_.log) cfg_.log(s);
  }
  DrainConfig cfg_;
  Mover mover_;
  std::unique_ptr<PolicyWatch> watch_;
  int stop_fd_ = -1;
};

}  // namespace envrun::agent
