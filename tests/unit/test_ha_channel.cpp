// The migration transport (ha/channel.hpp, ha/handshake.hpp, ha/psk.hpp) over socket
// pairs: the good path, and each attack or accident it must refuse with its own message
// (wrong key, a flipped byte, a replayed frame, an oversize frame, a peer that vanishes,
// a silent peer). A "tap" thread between the two ends lets a test change the bytes.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ha/channel.hpp"
#include "ha/psk.hpp"

using namespace envrun;
using namespace envrun::ha;

namespace {

constexpr size_t kClientHandshakeBytes = 44 + 32;  // ClientHello + ClientProof

std::vector<uint8_t> key(uint8_t fill) { return std::vector<uint8_t>(32, fill); }

std::pair<UniqueFd, UniqueFd> socket_pair() {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

ChannelOptions opts(const char* peer, int timeout_ms = 5000) {
  ChannelOptions o;
  o.timeout_ms = timeout_ms;
  o.peer = peer;
  return o;
}

// Forwards bytes between `a` (client side) and `b` (server side); client->server bytes
// pass through `edit` (stream offset, bytes) first. Ends when either side closes.
class Tap {
 public:
  using Edit = std::function<void(size_t offset, std::vector<uint8_t>& bytes)>;
  Tap(UniqueFd a, UniqueFd b, Edit edit) : a_(std::move(a)), b_(std::move(b)), edit_(std::move(edit)) {
    th_ = std::thread([this] {
      loop();
      a_.reset(), b_.reset();  // either side's close reaches the other
    });
  }
  ~Tap() { th_.join(); }

 private:
  void loop() {
    size_t offset = 0;
    uint8_t buf[65536];
    for (;;) {
      pollfd p[2] = {{a_.get(), POLLIN, 0}, {b_.get(), POLLIN, 0}};
      if (::poll(p, 2, 10000) <= 0) return;
      if (p[0].revents) {
        ssize_t n = ::read(a_.get(), buf, sizeof buf);
        if (n <= 0) return;
        std::vector<uint8_t> bytes(buf, buf + n);
        if (edit_) edit_(offset, bytes);
        offset += size_t(n);
        // MSG_NOSIGNAL: a side that hung up must give EPIPE here, not kill the test with SIGPIPE.
        if (::send(b_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) != ssize_t(bytes.size())) return;
      }
      if (p[1].revents) {
        ssize_t n = ::read(b_.get(), buf, sizeof buf);
        if (n <= 0 || ::send(a_.get(), buf, size_t(n), MSG_NOSIGNAL) != n) return;
      }
    }
  }
  UniqueFd a_, b_;
  Edit edit_;
  std::thread th_;
};

// A client and an agent connected directly or through a Tap; each side's body runs once
// its handshake is done. Returns each side's handshake error ("" when it succeeded).
struct Outcome {
  std::string client_error, server_error;
};

Outcome run_pair(std::vector<uint8_t> client_key, std::vector<uint8_t> server_key, ChannelOptions server_opts,
                 const std::function<void(Channel&)>& client_body, const std::function<void(Channel&)>& agent_body,
                 Tap::Edit edit = {}) {
  auto [c, s1] = socket_pair();
  std::optional<Tap> tap;
  UniqueFd s;
  if (edit) {
    auto [s2, s3] = socket_pair();
    tap.emplace(std::move(s1), std::move(s2), edit);
    s = std::move(s3);
  } else {
    s = std::move(s1);
  }
  Outcome out;
  std::thread agent([&] {
    auto server = Channel::server(std::move(s), server_key, server_opts);
    if (!server) out.server_error = server.error().message;
    else if (agent_body) agent_body(*server);
  });
  {
    auto client = Channel::client(std::move(c), client_key, opts("agent"));
    if (!client) out.client_error = client.error().message;
    else if (client_body) client_body(*client);
  }  // closes our end: the agent's waits end
  agent.join();
  return out;
}

Bytes text(const std::string& s) { return as_bytes(s); }

}  // namespace

TEST_CASE("good path: frames both ways, sequence numbers, split JSON messages") {
  std::string got_text;
  nlohmann::json got_json;
  std::string reply;
  uint64_t server_received = 0;
  run_pair(
      key(7), key(7), opts("client"),
      [&](Channel& ch) {
        REQUIRE(ch.send(FrameType::Data, text("hello agent")).ok());
        ch.set_max_send(16);  // the JSON below needs several frames
        nlohmann::json j = {{"id", "c1"}, {"list", std::vector<int>(50, 7)}};
        REQUIRE(ch.send_json(FrameType::Manifest, j).ok());
        auto r = ch.recv_json(FrameType::Ok);
        REQUIRE(r.ok());
        reply = r->value("answer", "");
      },
      [&](Channel& ch) {
        auto f = ch.recv();
        REQUIRE(f.ok());
        CHECK(f->type == FrameType::Data);
        CHECK(f->seq == 0);
        got_text.assign(f->payload.begin(), f->payload.end());
        auto j = ch.recv_json(FrameType::Manifest);
        REQUIRE(j.ok());
        got_json = *j;
        REQUIRE(ch.send_json(FrameType::Ok, {{"answer", "yes"}}).ok());
        server_received = ch.bytes_received();
      });
  CHECK(got_text == "hello agent");
  CHECK(got_json["id"] == "c1");
  CHECK(got_json["list"].size() == 50);
  CHECK(reply == "yes");
  CHECK(server_received > 16 * 5);
}

// The bulk paths (ha/image_transfer.cpp): the sender's buffer is sealed where it is, the
// receiver's frame buffer is reused across frames of any size.
TEST_CASE("send_in_place and recv_into: payloads of changing sizes arrive whole, the sender's buffer is sealed") {
  std::vector<size_t> sizes = {70000, 10, 300000, 0, 4096, 70000};
  std::vector<std::vector<uint8_t>> sent, got;
  bool buffer_changed = true;
  run_pair(
      key(3), key(3), opts("client"),
      [&](Channel& ch) {
        for (size_t i = 0; i < sizes.size(); ++i) {
          std::vector<uint8_t> b(sizes[i]);
          for (size_t k = 0; k < b.size(); ++k) b[k] = uint8_t(k * 7 + i);
          sent.push_back(b);
          REQUIRE(ch.send_in_place(FrameType::Data, std::span<uint8_t>(b)).ok());
          if (b.size() >= 16) buffer_changed = buffer_changed && b != sent.back();  // the ciphertext now
        }
      },
      [&](Channel& ch) {
        Frame f;
        for (size_t i = 0; i < sizes.size(); ++i) {
          REQUIRE(ch.recv_into(f).ok());
          CHECK(f.type == FrameType::Data);
          CHECK(f.seq == i);
          got.push_back(f.payload);
        }
      });
  CHECK(buffer_changed);
  REQUIRE(got.size() == sent.size());
  for (size_t i = 0; i < sent.size(); ++i) CHECK(got[i] == sent[i]);
}

TEST_CASE("wrong key: both sides say authentication failed, no frame gets through") {
  bool agent_ran = false;
  auto out = run_pair(key(1), key(2), opts("client"), {}, [&](Channel&) { agent_ran = true; });
  CHECK_THAT(out.client_error, Catch::Contains("authentication failed (the agent does not prove our pre-shared key)"));
  CHECK_THAT(out.server_error, Catch::Contains("authentication failed"));
  CHECK_FALSE(agent_ran);
}

TEST_CASE("a client that replays another session's proof is refused") {
  // The proof depends on the agent's fresh nonce: a recorded one does not fit a new session.
  std::vector<uint8_t> recorded;
  run_pair(key(3), key(3), opts("client"), {}, {}, [&](size_t off, std::vector<uint8_t>& b) {
    for (size_t i = 0; i < b.size(); ++i)
      if (off + i >= 44 && off + i < 76) recorded.push_back(b[i]);
  });
  REQUIRE(recorded.size() == 32);
  auto out = run_pair(key(3), key(3), opts("client"), {}, {}, [&](size_t off, std::vector<uint8_t>& b) {
    for (size_t i = 0; i < b.size(); ++i)
      if (off + i >= 44 && off + i < 76) b[i] = recorded[off + i - 44];
  });
  CHECK(out.client_error.empty());
  CHECK_THAT(out.server_error, Catch::Contains("authentication failed (the client does not prove our pre-shared key)"));
}

TEST_CASE("a flipped byte in a frame is a corrupted frame") {
  for (size_t at : {size_t(0), size_t(9), size_t(16 + 3), size_t(16 + 11 + 5)}) {  // type, seq, payload, tag
    INFO("byte " << at << " of the first frame flipped");
    std::optional<Result<Frame>> got;
    run_pair(key(4), key(4), opts("client"), [&](Channel& ch) { REQUIRE(ch.send(FrameType::Data, text("hello agent")).ok()); },
             [&](Channel& ch) { got.emplace(ch.recv()); },
             [&](size_t off, std::vector<uint8_t>& b) {
               size_t target = kClientHandshakeBytes + at;
               if (target >= off && target < off + b.size()) b[target - off] ^= 0x01;
             });
    REQUIRE(got.has_value());
    REQUIRE_FALSE(got->ok());
    CHECK_THAT(got->error().message, Catch::Contains("corrupted frame"));
  }
}

TEST_CASE("payloads travel encrypted: the wire never shows them") {
  const std::string secret = "the quick brown fox jumps over the lazy dog, twice over";
  std::string wire;
  std::optional<Result<Frame>> got;
  run_pair(key(6), key(6), opts("client"), [&](Channel& ch) { REQUIRE(ch.send(FrameType::Data, text(secret)).ok()); },
           [&](Channel& ch) { got.emplace(ch.recv()); },
           [&](size_t, std::vector<uint8_t>& b) { wire.append(b.begin(), b.end()); });
  REQUIRE(got.has_value());
  REQUIRE(got->ok());
  CHECK(std::string((*got)->payload.begin(), (*got)->payload.end()) == secret);
  REQUIRE(wire.size() == kClientHandshakeBytes + kFrameHeaderSize + secret.size() + kFrameTagSize);
  CHECK(wire.find("quick brown") == std::string::npos);
}

TEST_CASE("Aes256Gcm: a sealed message opens with its number only, and a changed byte fails") {
  std::vector<uint8_t> k(32, 7);
  Aes256Gcm seal(k, true), open(k, false);
  REQUIRE(seal.ok());
  REQUIRE(open.ok());
  std::string aad = "header";
  std::vector<uint8_t> msg(100000);
  for (size_t i = 0; i < msg.size(); ++i) msg[i] = uint8_t(i * 31);
  std::vector<uint8_t> c(msg.size());
  AeadTag tag;
  REQUIRE(seal.seal(41, as_bytes(aad), msg.data(), msg.size(), c.data(), tag));
  CHECK(c != msg);
  auto copy = c;
  CHECK_FALSE(open.open(42, as_bytes(aad), copy.data(), copy.size(), tag));  // another number
  copy = c;
  CHECK_FALSE(open.open(41, as_bytes(std::string("Header")), copy.data(), copy.size(), tag));  // other header
  copy = c;
  copy[50000] ^= 0x80;
  CHECK_FALSE(open.open(41, as_bytes(aad), copy.data(), copy.size(), tag));
  copy = c;
  REQUIRE(open.open(41, as_bytes(aad), copy.data(), copy.size(), tag));
  CHECK(copy == msg);
}

TEST_CASE("a replayed frame is refused by its sequence number") {
  const size_t frame_bytes = kFrameHeaderSize + 10 + kFrameTagSize;
  std::vector<std::string> results;
  run_pair(key(5), key(5), opts("client"),
           [&](Channel& ch) {
             REQUIRE(ch.send(FrameType::Data, text("0123456789")).ok());
             // The receiver may already have refused the replayed copy and hung up: this
             // send may fail (a REQUIRE in this thread would abort the whole test program).
             (void)ch.send(FrameType::Data, text("abcdefghij"));
           },
           [&](Channel& ch) {
             for (int i = 0; i < 2; ++i) {
               auto f = ch.recv();
               results.push_back(f ? std::string(f->payload.begin(), f->payload.end()) : f.error().message);
             }
           },
           [&, copied = std::vector<uint8_t>()](size_t off, std::vector<uint8_t>& b) mutable {
             // Record the first frame; once it passed, send it again in front of what follows.
             std::vector<uint8_t> out;
             for (size_t i = 0; i < b.size(); ++i) {
               size_t pos = off + i;
               if (pos >= kClientHandshakeBytes && pos < kClientHandshakeBytes + frame_bytes) copied.push_back(b[i]);
               out.push_back(b[i]);
               if (pos + 1 == kClientHandshakeBytes + frame_bytes) out.insert(out.end(), copied.begin(), copied.end());
             }
             b = out;
           });
  REQUIRE(results.size() == 2);
  CHECK(results[0] == "0123456789");
  CHECK_THAT(results[1], Catch::Contains("replayed or reordered frame: sequence number 0, expected 1"));
}

TEST_CASE("an oversize frame is refused before its payload is read") {
  ChannelOptions small = opts("client");
  small.max_payload = 1024;
  std::optional<Result<Frame>> got;
  run_pair(key(6), key(6), small,
           [&](Channel& ch) { (void)ch.send(FrameType::Data, Bytes(std::vector<uint8_t>(1025, 1))); },
           [&](Channel& ch) { got.emplace(ch.recv()); });
  REQUIRE_FALSE(got->ok());
  CHECK_THAT(got->error().message, Catch::Contains("frame too large: 1025 bytes"));
  CHECK_THAT(got->error().message, Catch::Contains("the limit is 1024"));
}

TEST_CASE("a frame at the limit passes, and a message beyond its bound is refused") {
  ChannelOptions small = opts("client");
  small.max_payload = 1024;
  std::optional<Result<Frame>> at_limit;
  std::optional<Result<nlohmann::json>> big;
  run_pair(key(6), key(6), small,
           [&](Channel& ch) {
             REQUIRE(ch.send(FrameType::Data, Bytes(std::vector<uint8_t>(1024, 1))).ok());
             ch.set_max_send(1000);
             (void)ch.send_json(FrameType::Manifest, std::string(5000, 'x'));
           },
           [&](Channel& ch) {
             at_limit.emplace(ch.recv());
             big.emplace(ch.recv_json(FrameType::Manifest, 4096));
           });
  REQUIRE(at_limit->ok());
  CHECK(at_limit->value().payload.size() == 1024);
  REQUIRE_FALSE(big->ok());
  CHECK_THAT(big->error().message, Catch::Contains("manifest message larger than 4096 bytes"));
}

TEST_CASE("a peer that closes inside a frame: peer closed mid-transfer") {
  std::optional<Result<Frame>> got;
  run_pair(key(8), key(8), opts("client"), [&](Channel& ch) { REQUIRE(ch.send(FrameType::Data, text("0123456789")).ok()); },
           [&](Channel& ch) { got.emplace(ch.recv()); },
           [&](size_t off, std::vector<uint8_t>& b) {  // only 20 bytes of the frame get through
             size_t end = kClientHandshakeBytes + 20;
             if (off + b.size() > end) b.resize(end > off ? end - off : 0);
           });
  REQUIRE_FALSE(got->ok());
  CHECK_THAT(got->error().message, Catch::Contains("peer closed mid-transfer"));
}

TEST_CASE("a silent peer times out; the peer's error message is passed on") {
  std::optional<Result<Frame>> silent;
  run_pair(key(9), key(9), opts("client", 200),
           [&](Channel&) {
             ::usleep(600 * 1000);  // longer than the agent's 200 ms
           },
           [&](Channel& ch) { silent.emplace(ch.recv()); });
  REQUIRE_FALSE(silent->ok());
  CHECK_THAT(silent->error().message, Catch::Contains("timed out after 200 ms"));

  std::optional<Result<nlohmann::json>> answer;
  run_pair(key(9), key(9), opts("client"), [&](Channel& ch) { ch.send_error("ROOT/x: No space left on device"); },
           [&](Channel& ch) { answer.emplace(ch.recv_json(FrameType::Ok)); });
  REQUIRE_FALSE(answer->ok());
  CHECK(answer->error().message == "client: ROOT/x: No space left on device");
}

TEST_CASE("pre-shared key files: too short, readable by others, good") {
  char dir[] = "/tmp/hamig-psk.XXXXXX";
  REQUIRE(::mkdtemp(dir));
  std::string d = dir;
  auto write = [&](const std::string& name, size_t n, mode_t mode) {
    std::string p = d + "/" + name;
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::string bytes(n, 'k');
    REQUIRE(::write(fd, bytes.data(), n) == ssize_t(n));
    ::close(fd);
    ::chmod(p.c_str(), mode);
    return p;
  };
  auto short_key = load_psk(write("short", 31, 0600));
  REQUIRE_FALSE(short_key.ok());
  CHECK_THAT(short_key.error().message, Catch::Contains("31 bytes: a key needs at least 32"));
  auto open_key = load_psk(write("open", 32, 0644));
  REQUIRE_FALSE(open_key.ok());
  CHECK_THAT(open_key.error().message, Catch::Contains("mode 0644 lets group or others access the key"));
  auto good = load_psk(write("good", 32, 0600));
  REQUIRE(good.ok());
  CHECK(good->size() == 32);
  auto missing = load_psk(d + "/none");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message, Catch::Contains("No such file"));
  std::system(("rm -rf " + d).c_str());
}
