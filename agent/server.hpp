// `envrun serve`: the agent's accept loop. One connection at a time: authenticate
// (ha/handshake.hpp), then serve one migration (session.hpp). SIGTERM or SIGINT stop it:
// a migration in progress is abandoned and cleaned up, then the agent exits.
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
