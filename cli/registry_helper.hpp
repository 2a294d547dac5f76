// The registry commands (pull, push, login, logout) run in the dynamically linked helper
// envrun-pull installed next to envrun (libcurl cannot be linked statically on Debian 12).
#pragma once
#include <string>
#include <vector>

#include "cli/cli.hpp"

namespace envrun::cli {

// exec `envrun-pull [<sub>] <global logging options> <args...>` (no sub: pull); returns
// only on failure.
Result<int> exec_registry_helper(const Globals& g, const std::string& sub, const std::vector<std::string>& args);

}  // namespace envrun::cli
