// `envrun serve`: the agent's accept loop. Each connection (at most 16 at once) is served
// on a thread of its own: authenticate (ha/handshake.hpp), then one migration (session.hpp;
// incoming migrations take turns) or another op (a drain). SIGTERM or SIGINT stop it: a
// migration in progress is abandoned and cleaned up, then the agent exits.
#pragma once
#include "agent/drain.hpp"
#include "agent/session.hpp"
#include "ha/net.hpp"

namespace envrun::agent {

struct ServeOptions {
  ha::Endpoint listen;
  AgentConfig cfg;
  Drainer* drain = nullptr;  // event-driven migration (drain.hpp): started here, told at the stop
};

Result<void> serve(const ServeOptions& o);

}  // namespace envrun::agent
