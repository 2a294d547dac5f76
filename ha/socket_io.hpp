// Bounded-time reads and writes on a non-blocking socket: every wait polls with a
// deadline and, when given, a cancel fd (readable = stop now, e.g. SIGTERM's signalfd).
// Errors name the peer and say what happened: "peer closed mid-transfer",
// "timed out after 30 s waiting for the peer", "cancelled".
#pragma once
#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>

#include "kernel/result.hpp"

namespace envrun::ha {

struct IoContext {
  int fd = -1;
  int timeout_ms = 30000;
  int cancel_fd = -1;
  std::string peer;  // "10.0.0.2:7070" (messages)
};

// Writes every byte of iov (modified: consumed as it goes).
Result<void> write_all(const IoContext& c, std::span<iovec> iov);
// Reads exactly out.size() bytes. `what` names what was being read (messages).
Result<void> read_exact(const IoContext& c, std::span<uint8_t> out, const std::string& what);
// True when bytes (or EOF) wait to be read now.
bool input_pending(int fd);
// Sets O_NONBLOCK (and TCP_NODELAY on TCP sockets).
Result<void> prepare_socket(int fd);

}  // namespace envrun::ha
