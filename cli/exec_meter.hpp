// `envrun exec --meter -- CMD`: a host command metered as a transient instance (exec_meter.cpp).
#pragma once
#include <string>
#include <vector>

#include "cli/cli.hpp"

namespace envrun::cli {

// Runs args in the foreground; returns its exit status (128+signal when killed).
// id: the instance id (default meter-<pid>); bundle_name: the ledger's bundle (default: args[0]'s name).
Result<int> exec_metered(Globals& g, const std::vector<std::string>& args, std::string id, std::string bundle_name);

}  // namespace envrun::cli
