// One incoming migration on an authenticated channel (the agent side of
// ha/migrate_source.hpp):
//   Welcome -> Begin/Ok -> bundle rounds (Manifest...Synced) -> memory rounds R = 0..n
//   (ImageBegin...ImageEnd/Ok, pre-copy, ha/image_transfer.hpp) -> Restore -> Busy... ->
//   Running -> Commit -> Committed
// The container is restored by `envrun --root DIR/state restore ID -b DIR/bundles/ID
// --image-path DIR/images/ID/rN -d` (rN the last round; its parents beside it) in a
// child process (the user's own command: the engine
// ptraces and forks stubs; a failure must not take the agent down). Until the Commit
// arrives nothing is kept: an error, a timeout or a vanished peer at any step removes the
// staged files, the bundle, the image and the container.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/agent_root.hpp"
#include "ha/channel.hpp"
#include "ha/limits.hpp"

namespace envrun::agent {

struct AgentConfig {
  AgentRoot root;
  std::vector<uint8_t> psk;
  ha::Limits limits;
  int timeout_ms = 30000;              // any one wait for the peer
  int restore_timeout_ms = 600000;     // the restore command
  std::vector<std::string> envrun_globals;  // passed to the restore/delete commands (--log ...)
  std::function<void(const std::string&)> log;  // one line per event
  // Begin ops other than "migrate" ("drain": agent/drain.hpp): called after the Welcome
  // with the channel and the Begin message; returns the line to log. Unset: refused.
  std::function<Result<std::string>(ha::Channel&, const nlohmann::json&)> serve_op;
};

// Serves one migration; returns what happened ("c1: running as pid 123").
// (The channel's cancel fd aborts every wait for the peer; a running restore is waited for.)
Result<std::string> serve_session(ha::Channel& ch, const AgentConfig& cfg);

// A killed agent's restored but uncommitted containers (a post-copy migration's app runs
// before the Commit; IMAGES/ID/uncommitted marks them) are deleted; before the sweep of
// IMAGES (AgentRoot::prepare). Returns how many.
int delete_uncommitted(const AgentConfig& cfg);

}  // namespace envrun::agent
