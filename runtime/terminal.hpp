// Terminals: a pty for the container's process, sent over a console socket as runc
// does, and a relay between the caller's stdio and a pty master for foreground runs.
#pragma once
#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::runtime {

// Connect to the console socket at `path` (a unix stream socket the caller listens on).
Result<UniqueFd> connect_console_socket(const std::string& path);

// Copy stdin -> master and master -> stdout until the master hangs up or `stop_fd`
// (e.g. a signalfd or pidfd) becomes readable; returns when either happens.
// The caller's terminal is put in raw mode for the duration when stdin is a tty.
// Returns true when the master hung up, false when stop_fd woke it.
bool relay_console(int master, int stop_fd);

}  // namespace envrun::runtime
