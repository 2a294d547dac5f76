// PolicyWatch: the agent's policy thread. Every interval (1 s) it lists the running
// containers under the agent's state root, reads the migration policy of each bundle
// (bundle/migration_policy.hpp) and, for those with memory_pressure or cpu_pressure in
// `on`, the container's pressure (policy_sample.hpp). A threshold exceeded for the
// policy's `for` fires a migration to the policy's peer (Mover); the thread waits for it
// (one migration at a time) and logs the outcome. A failed migration leaves the container
// running here (migrate's rollback) and is tried again no sooner than `retry_after`, if
// the pressure still lasts. A broken envrun.yaml is logged once and ignored.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "agent/drain_mover.hpp"
#include "agent/policy_sample.hpp"

namespace envrun::agent {

// What in `r` is above the policy's thresholds, as words for the log ("" when nothing).
std::string over_threshold(const bundle::MigrationPolicy& p, const PressureReading& r);

class PolicyWatch {
 public:
  struct Config {
    AgentRoot root;
    std::string agent_psk;  // the key where a policy names none
    int interval_ms = 1000;
    std::function<void(const std::string&)> log;
    std::string self;  // this agent's ADDR:PORT (a container moved here whose peer is us stays)
  };
  PolicyWatch(Config c, Mover& mover) : cfg_(std::move(c)), mover_(mover) {}
  ~PolicyWatch() { stop(); }
  // Starts the thread (with every signal blocked: the agent's main thread reads them).
  Result<void> start();
  // Ends the thread; a migration it runs is waited for.
  void stop();

 private:
  struct Track {
    uint64_t above_since = 0;  // ms (steady); 0: below
    uint64_t retry_at = 0;
    std::string last_error;
    bool no_limit_logged = false;
  };
  void loop();
  void round(const runtime::CgroupMounts& mounts);
  void log(const std::string& s) const {
    if (cfg_.log) cfg_.log(s);
  }
  bool stopping();

  Config cfg_;
  Mover& mover_;
  std::map<std::string, Track> tracks_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace envrun::agent
