// The remote CLI: `envrun --host URL --token-file F [--cacert F] CMD ...` runs CMD through
// an agent's management API instead of on this host. URL is unix:///PATH (the agent's
// socket) or https://HOST:PORT (certificate checked against --cacert, else the system's
// CAs); plain http:// is refused. Commands: list, state, start, kill, delete, run (a
// library bundle: run -b NAME[:VERSION] ID, always detached). Output and exit codes are
// those of the local commands (envrun(1)).
#pragma once

namespace envrun::cli {

// argv[0] is "remote"; the global options follow, then the command.
int remote_main(int argc, char** argv);

}  // namespace envrun::cli
