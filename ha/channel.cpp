// Channel: framing, tags and sequence numbers on top of socket_io.
#include "ha/channel.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace envrun::ha {

const char* frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::Welcome: return "welcome";
    case FrameType::Begin: return "begin";
    case FrameType::Ok: return "ok";
    case FrameType::Error: return "error";
    case FrameType::Manifest: return "manifest";
    case FrameType::Need: return "need";
    case FrameType::Blob: return "blob";
    case FrameType::Data: return "data";
    case FrameType::BlobsDone: return "blobs-done";
    case FrameType::Synced: return "synced";
    case FrameType::ImageBegin: return "image-begin";
    case FrameType::ImageEnd: return "image-end";
    case FrameType::Restore: return "restore";
    case FrameType::Busy: return "busy";
    case FrameType::Running: return "running";
    case FrameType::Commit: return "commit";
    case FrameType::Committed: return "committed";
    case FrameType::LazyHoles: return "lazy-holes";
    case FrameType::PageFetch: return "page-fetch";
    case FrameType::FetchEnd: return "fetch-end";
    case FrameType::PagesIn: return "pages-in";
    case FrameType::DrainPlan: return "drain-plan";
    case FrameType::DrainProgress: return "drain-progress";
    case FrameType::DrainResult: return "drain-result";
    case FrameType::DrainDone: return "drain-done";
  }
  return "unknown";
}

Channel::Channel(UniqueFd sock, const ChannelOptions& o, const SessionKeys& k)
    : sock_(std::move(sock)),
      max_payload_(std::min(o.max_payload, kMaxPayloadCeiling)),
      send_aead_(Bytes(k.send.data(), k.send.size()), true),
      recv_aead_(Bytes(k.recv.data(), k.recv.size()), false) {
  io_ = IoContext{sock_.get(), o.timeout_ms, o.cancel_fd, o.peer};
}

Result<Channel> Channel::client(UniqueFd sock, Bytes psk, const ChannelOptions& o) {
  ENVRUN_CHECK(prepare_socket(sock.get()));
  IoContext io{sock.get(), o.timeout_ms, o.cancel_fd, o.peer};
  auto keys = ENVRUN_TRY(handshake_client(io, psk));
  Channel ch(std::move(sock), o, keys);
  if (!ch.send_aead_.ok() || !ch.recv_aead_.ok()) return Error::make(ErrorKind::System, "OpenSSL: AES-256-GCM unavailable");
  return ch;
}

Result<Channel> Channel::server(UniqueFd sock, Bytes psk, const ChannelOptions& o) {
  ENVRUN_CHECK(prepare_socket(sock.get()));
  IoContext io{sock.get(), o.timeout_ms, o.cancel_fd, o.peer};
  auto keys = ENVRUN_TRY(handshake_server(io, psk));
  Channel ch(std::move(sock), o, keys);
  if (!ch.send_aead_.ok() || !ch.recv_aead_.ok()) return Error::make(ErrorKind::System, "OpenSSL: AES-256-GCM unavailable");
  return ch;
}

Error Channel::protocol_error(const std::string& what) const {
  return Error::make(ErrorKind::Generic, io_.peer + ": " + what);
}

// A peer that gives up says why in an Error frame before it closes: when a send fails,
// that frame (if it arrived) is the better message.
Error Channel::peer_reason(Error send_error) {
  if (!ha::input_pending(sock_.get())) return send_error;
  int saved = io_.timeout_ms;
  io_.timeout_ms = std::min(saved, 1000);
  auto m = recv_next(64 * 1024);
  io_.timeout_ms = saved;
  return m ? std::move(send_error) : std::move(m).error();
}

Result<void> Channel::send(FrameType t, Bytes payload, uint8_t flags) {
  if (sealed_.size() < payload.size()) sealed_.resize(payload.size());
  return send_sealed(t, payload.data(), std::span<uint8_t>(sealed_.data(), payload.size()), flags);
}

Result<void> Channel::send_in_place(FrameType t, std::span<uint8_t> payload, uint8_t flags) {
  return send_sealed(t, payload.data(), payload, flags);
}

// Seals `in` into `out` (the same bytes or as many elsewhere) and sends the frame.
Result<void> Channel::send_sealed(FrameType t, const uint8_t* in, std::span<uint8_t> out, uint8_t flags) {
  FrameHeader h{t, flags, 0, uint32_t(out.size()), send_seq_};
  uint8_t head[kFrameHeaderSize];
  encode_header(h, head);
  AeadTag tag;
  if (!send_aead_.seal(send_seq_, Bytes(head, sizeof head), in, out.size(), out.data(), tag))
    return Error::make(ErrorKind::System, "OpenSSL: AES-256-GCM failed to seal a frame");
  iovec iov[3] = {{head, sizeof head}, {out.data(), out.size()}, {tag.data(), tag.size()}};
  if (auto r = write_all(io_, iov); !r) return peer_reason(std::move(r).error());
  ++send_seq_;
  sent_bytes_ += sizeof head + out.size() + tag.size();
  return ok();
}

Result<void> Channel::send_json(FrameType t, const nlohmann::json& j) {
  std::string text = j.dump();
  Bytes all = as_bytes(text);
  size_t step = std::max<size_t>(max_send_, 1);
  for (size_t off = 0;;) {
    size_t n = std::min(step, all.size() - off);
    bool more = off + n < all.size();
    ENVRUN_CHECK(send(t, all.subspan(off, n), more ? kFlagMore : 0));
    off += n;
    if (!more) return ok();
  }
}

void Channel::send_error(const std::string& text) {
  int saved = io_.timeout_ms;
  io_.timeout_ms = std::min(saved, 5000);
  (void)send_json(FrameType::Error, {{"message", text}});
  io_.timeout_ms = saved;
}

Result<Frame> Channel::recv() {
  Frame f;
  ENVRUN_CHECK(recv_into(f));
  return f;
}

Result<void> Channel::recv_into(Frame& f) {
  uint8_t head[kFrameHeaderSize];
  ENVRUN_CHECK(read_exact(io_, head, "a frame header"));
  FrameHeader h = decode_header(head);
  if (h.length > max_payload_)
    return protocol_error("frame too large: " + std::to_string(h.length) + " bytes (type " + frame_type_name(h.type) +
                          "), the limit is " + std::to_string(max_payload_));
  f.type = h.type, f.flags = h.flags, f.seq = h.seq;
  f.payload.resize(h.length);  // zero-filled only past what an earlier frame left
  ENVRUN_CHECK(read_exact(io_, f.payload, "a " + std::to_string(h.length) + "-byte frame"));
  AeadTag tag;
  ENVRUN_CHECK(read_exact(io_, tag, "a frame's tag"));
  // The nonce is the frame's own (authenticated) sequence number: a frame of this
  // session sent again passes the tag and is then refused by its number.
  if (!recv_aead_.open(h.seq, Bytes(head, sizeof head), f.payload.data(), f.payload.size(), tag))
    return protocol_error("corrupted frame #" + std::to_string(recv_seq_) + " (" + std::to_string(h.length) +
                          " bytes): its AES-GCM tag does not match");
  if (h.seq != recv_seq_)
    return protocol_error("replayed or reordered frame: sequence number " + std::to_string(h.seq) + ", expected " +
                          std::to_string(recv_seq_));
  if (h.reserved != 0 || (h.flags & ~kFlagMore)) return protocol_error("frame #" + std::to_string(h.seq) + ": unknown flags");
  ++recv_seq_;
  received_bytes_ += sizeof head + h.length + tag.size();
  return ok();
}

Result<Channel::Message> Channel::recv_next(size_t max_bytes) {
  Message m;
  for (bool first = true;; first = false) {
    Frame f = ENVRUN_TRY(recv());
    if (!first && f.type != m.type)
      return protocol_error(std::string("a ") + frame_type_name(m.type) + " message was cut by a " +
                            frame_type_name(f.type) + " frame");
    m.type = f.type;
    if (m.bytes.size() + f.payload.size() > max_bytes)
      return protocol_error(std::string(frame_type_name(m.type)) + " message larger than " + std::to_string(max_bytes) +
                            " bytes");
    m.bytes.insert(m.bytes.end(), f.payload.begin(), f.payload.end());
    if (!(f.flags & kFlagMore)) break;
  }
  if (m.type == FrameType::Error) {
    auto j = nlohmann::json::parse(m.bytes.begin(), m.bytes.end(), nullptr, false);
    std::string msg = j.is_object() && j.contains("message") && j["message"].is_string() ? j["message"].get<std::string>()
                                                                                         : std::string("(unreadable error)");
    return Error::make(ErrorKind::Generic, io_.peer + ": " + msg);
  }
  return m;
}

Result<nlohmann::json> Channel::Message::json() const {
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) return Error::make(ErrorKind::Generic, std::string(frame_type_name(type)) + " message: not valid JSON");
  return j;
}

Result<std::vector<uint8_t>> Channel::recv_message(FrameType want, size_t max_bytes) {
  auto m = ENVRUN_TRY(recv_next(max_bytes));
  if (m.type != want)
    return protocol_error(std::string("protocol error: expected a ") + frame_type_name(want) + " message, got " +
                          frame_type_name(m.type));
  return std::move(m.bytes);
}

Result<nlohmann::json> Channel::recv_json(FrameType want, size_t max_bytes) {
  auto bytes = ENVRUN_TRY(recv_message(want, max_bytes));
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) return protocol_error(std::string(frame_type_name(want)) + " message: not valid JSON");
  return j;
}

void Channel::linger(int ms) {
  ::shutdown(sock_.get(), SHUT_WR);
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  uint8_t buf[65536];
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{sock_.get(), POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count();
    if (::poll(&p, 1, int(std::max<long long>(left, 0))) <= 0) return;
    ssize_t n = ::read(sock_.get(), buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
  }
}

}  // namespace envrun::ha
