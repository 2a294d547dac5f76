// The health check after an upgrade (agent/upgrade.hpp HealthCheck): a command run inside
// the instance (`envrun exec ID -- ARGV`, exit 0 = healthy) or an HTTP GET (a 2xx or 3xx
// status = healthy), retried every 500 ms until it passes or timeout_s elapses. Without
// either, the instance only has to be running after a short settle time.
#pragma once
#include <functional>
#include <string>

#include "agent/instance_ops.hpp"
#include "agent/upgrade.hpp"

namespace envrun::agent {

// ok() when healthy; else an error whose message is the last attempt's reason.
Result<void> check_health(const InstanceOps& ops, const std::string& id, const HealthCheck& h,
                          const std::function<void(const std::string&)>& progress);

// One HTTP GET of http://HOST[:PORT]/PATH, bounded by timeout_ms: the status code.
Result<int> http_get_status(const std::string& url, int timeout_ms);

}  // namespace envrun::agent
