// Channel: an authenticated, sequenced stream of frames (frame.hpp) over one socket,
// opened by the handshake (handshake.hpp). Every received frame is checked in this
// order: its length against our bound ("frame too large"), its GCM tag ("corrupted frame"),
// its sequence number ("replayed or reordered frame"). The first failure ends the channel.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ha/crypto.hpp"
#include "ha/frame.hpp"
#include "ha/handshake.hpp"
#include "ha/socket_io.hpp"
#include "kernel/fd.hpp"

namespace envrun::ha {

struct ChannelOptions {
  uint32_t max_payload = kDefaultMaxPayload;  // longest payload accepted from the peer
  int timeout_ms = 30000;                     // any one wait for the peer
  int cancel_fd = -1;                         // readable: abort every wait
  std::string peer;                           // for messages
};

struct Frame {
  FrameType type{};
  uint8_t flags = 0;
  uint64_t seq = 0;
  std::vector<uint8_t> payload;
};

class Channel {
 public:
  // Handshake over `sock` (made non-blocking here) as the connecting side / the agent.
  static Result<Channel> client(UniqueFd sock, Bytes psk, const ChannelOptions& o);
  static Result<Channel> server(UniqueFd sock, Bytes psk, const ChannelOptions& o);
  Channel(Channel&&) = default;
  Channel& operator=(Channel&&) = default;

  Result<void> send(FrameType t, Bytes payload, uint8_t flags = 0);
  // The same, encrypting `payload` where it is (its bytes are the ciphertext afterwards):
  // a bulk sender saves a copy and half the cache it sweeps.
  Result<void> send_in_place(FrameType t, std::span<uint8_t> payload, uint8_t flags = 0);
  // A JSON message, split into frames of at most max_send bytes.
  Result<void> send_json(FrameType t, const nlohmann::json& j);
  // An Error frame with {"message": text}; failures to send it are ignored.
  void send_error(const std::string& text);
  Result<Frame> recv();
  // The same into `f`, whose payload buffer is reused (a bulk receiver allocates and
  // zero-fills no new buffer per frame).
  Result<void> recv_into(Frame& f);
  // The next message: frames joined while kFlagMore is set, at most max_bytes in all. A
  // peer's Error frame becomes an Error ("<peer>: <its message>"); a type other than
  // `want` is a protocol error.
  Result<nlohmann::json> recv_json(FrameType want, size_t max_bytes = 16u << 20);
  // Raw message bytes (as recv_json, without the parse).
  Result<std::vector<uint8_t>> recv_message(FrameType want, size_t max_bytes);
  // The next message of any type (a peer's Error frame still becomes an Error).
  struct Message {
    FrameType type{};
    std::vector<uint8_t> bytes;
    Result<nlohmann::json> json() const;
  };
  Result<Message> recv_next(size_t max_bytes = 16u << 20);

  bool input_pending() const { return ha::input_pending(sock_.get()); }
  // After a fatal error: stop sending, read and drop what the peer still sends (bounded
  // in time), so that our last frame reaches it instead of a reset.
  void linger(int ms);
  void set_timeout(int ms) { io_.timeout_ms = ms; }
  int timeout() const { return io_.timeout_ms; }
  void set_max_send(uint32_t n) { max_send_ = n; }
  uint32_t max_send() const { return max_send_; }
  const std::string& peer() const { return io_.peer; }
  uint64_t bytes_sent() const { return sent_bytes_; }
  uint64_t bytes_received() const { return received_bytes_; }

 private:
  Channel(UniqueFd sock, const ChannelOptions& o, const SessionKeys& k);
  Error protocol_error(const std::string& what) const;
  Error peer_reason(Error send_error);
  Result<void> send_sealed(FrameType t, const uint8_t* in, std::span<uint8_t> out, uint8_t flags);
  UniqueFd sock_;
  IoContext io_;
  uint32_t max_payload_;
  uint32_t max_send_ = kDefaultMaxPayload;
  Aes256Gcm send_aead_, recv_aead_;
  std::vector<uint8_t> sealed_;  // the ciphertext of the frame being sent
  uint64_t send_seq_ = 0, recv_seq_ = 0;
  uint64_t sent_bytes_ = 0, received_bytes_ = 0;
};

}  // namespace envrun::ha
