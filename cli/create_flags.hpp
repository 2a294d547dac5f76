// The flags `create` and `run` share.
#pragma once
#include "cli/cli.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {
void add_create_flags(CLI::App* sub, runtime::CreateOptions& o);
}
