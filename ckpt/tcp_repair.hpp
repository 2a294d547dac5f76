// Established TCP connections through the kernel's repair mode (TCP_REPAIR): at dump,
// sequence numbers, options, windows and both queues are read from a socket switched
// to repair mode (which also makes its close silent: the peer sees no FIN or RST); at
// restore, a socket in repair mode is bound and "connected" without a handshake, given
// the same state and queues, then switched back to normal.
#pragma once
#include <string>
#include <vector>

#include "ckpt/model.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt::tcp {

// s: a duplicate of the connection's socket. Leaves it in repair mode.
Result<void> dump(int s, SocketState& k, std::vector<uint8_t>& send_queue, std::vector<uint8_t>& recv_queue,
                  const std::string& what);
// Back to normal operation (the tree keeps running).
void end_repair(int s);
// A new socket with the dumped connection's state; recv_queue / send_queue as dumped.
// It stays in repair mode (silent) until resume(): a connection whose peer is restored
// too must not talk before that peer exists (it would be answered with a reset).
Result<int> restore(const SocketState& k, const std::vector<uint8_t>& send_queue, const std::vector<uint8_t>& recv_queue,
                    const std::string& what);
// Repair mode off, then the bytes that had never been sent are sent.
Result<void> resume(int fd, const SocketState& k, const std::vector<uint8_t>& send_queue, const std::string& what);

}  // namespace envrun::ckpt::tcp
