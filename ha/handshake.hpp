// The handshake of the migration transport: both sides prove that they hold the
// pre-shared key over fresh nonces from both sides, and derive one session key per
// direction. Nothing else is accepted before it completes.
//
//   client -> agent   ClientHello  "ENVRUNHA" | version u16 | 0 u16 | nonce_c[32]
//   agent  -> client  ServerHello  "ENVRUNHA" | version u16 | 0 u16 | nonce_s[32] | proof_s[32]
//   client -> agent   ClientProof  proof_c[32]
//
//   proof_s = HMAC(psk, "envrun-ha v2 server" | nonce_c | nonce_s)
//   proof_c = HMAC(psk, "envrun-ha v2 client" | nonce_c | nonce_s)
//   key_c2s = HMAC(psk, "envrun-ha v2 key c2s" | nonce_c | nonce_s), key_s2c likewise
//
// The client checks proof_s before it proves anything; the agent checks proof_c and
// then sends its first frame (Welcome) under key_s2c, or closes. A peer without the key
// fails with "authentication failed"; a replayed handshake fails on the other side's
// fresh nonce.
#pragma once
#include <vector>

#include "ha/crypto.hpp"
#include "ha/socket_io.hpp"

namespace envrun::ha {

// 2: frames sealed with AES-256-GCM (1: HMAC-SHA256 tags, payloads in the clear).
inline constexpr uint16_t kProtocolVersion = 2;

struct SessionKeys {
  Digest send{};  // key of the frames we send
  Digest recv{};  // key of the frames we receive
};

Result<SessionKeys> handshake_client(const IoContext& io, Bytes psk);
Result<SessionKeys> handshake_server(const IoContext& io, Bytes psk);

}  // namespace envrun::ha
