// push, login and logout inside the envrun-pull helper (`envrun-pull push ...`): the
// envrun side execs the helper with the command's name first (cli/registry_helper.hpp).
#pragma once
#include <string_view>

#include "kernel/result.hpp"

namespace envrun::cli {

bool is_registry_command(std::string_view name);
// argv[0] is the command's name. Help and parse errors return CLI11's exit status; a
// failure is an Error whose message starts with "<command> <argument>: ".
Result<int> run_registry_command(int argc, char** argv);

}  // namespace envrun::cli
