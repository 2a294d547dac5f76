// OCI hooks: each hook is executed with its args/env, the container state JSON on
// stdin, and killed after its timeout. A failing hook fails the phase.
#pragma once
#include <string>
#include <vector>

#include "bundle/spec.hpp"
#include "kernel/result.hpp"

namespace envrun::runtime {

Result<void> run_hooks(const std::vector<oci::Hook>& hooks, const std::string& phase,
                       const std::string& state_json);

}  // namespace envrun::runtime
