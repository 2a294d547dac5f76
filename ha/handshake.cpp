// handshake_client / handshake_server (the exchange is described in handshake.hpp).
#include "ha/handshake.hpp"

#include <cstring>

namespace envrun::ha {

namespace {

constexpr char kMagic[8] = {'E', 'N', 'V', 'R', 'U', 'N', 'H', 'A'};
constexpr size_t kHelloSize = 8 + 2 + 2 + 32;

struct Nonces {
  std::array<uint8_t, 32> c{}, s{};
};

Digest derive(Bytes psk, std::string_view label, const Nonces& n) {
  return hmac_sha256(psk, {as_bytes(label), Bytes(n.c.data(), 32), Bytes(n.s.data(), 32)});
}

void put_hello(uint8_t* out, const std::array<uint8_t, 32>& nonce) {
  std::memcpy(out, kMagic, 8);
  out[8] = uint8_t(kProtocolVersion), out[9] = uint8_t(kProtocolVersion >> 8);
  out[10] = out[11] = 0;
  std::memcpy(out + 12, nonce.data(), 32);
}

Result<void> check_hello(const IoContext& io, const uint8_t* in, std::array<uint8_t, 32>& nonce) {
  if (std::memcmp(in, kMagic, 8) != 0)
    return Error::make(ErrorKind::Generic, io.peer + ": not an envrun migration peer (bad handshake magic)");
  uint16_t v = uint16_t(in[8] | in[9] << 8);
  if (v != kProtocolVersion)
    return Error::make(ErrorKind::Generic, io.peer + ": peer speaks migration protocol version " + std::to_string(v) +
                                               ", this envrun speaks " + std::to_string(kProtocolVersion));
  std::memcpy(nonce.data(), in + 12, 32);
  return ok();
}

Result<void> send_bytes(const IoContext& io, const uint8_t* p, size_t n) {
  iovec v{const_cast<uint8_t*>(p), n};
  return write_all(io, std::span<iovec>(&v, 1));
}

SessionKeys keys_for(Bytes psk, const Nonces& n, bool client) {
  Digest c2s = derive(psk, "envrun-ha v2 key c2s", n), s2c = derive(psk, "envrun-ha v2 key s2c", n);
  return client ? SessionKeys{c2s, s2c} : SessionKeys{s2c, c2s};
}

}  // namespace

Result<SessionKeys> handshake_client(const IoContext& io, Bytes psk) {
  Nonces n;
  ENVRUN_CHECK(random_bytes(n.c));
  uint8_t hello[kHelloSize];
  put_hello(hello, n.c);
  ENVRUN_CHECK(send_bytes(io, hello, sizeof hello));
  uint8_t reply[kHelloSize + 32];
  ENVRUN_CHECK(read_exact(io, reply, "the agent's handshake"));
  ENVRUN_CHECK(check_hello(io, reply, n.s));
  Digest want = derive(psk, "envrun-ha v2 server", n);
  if (!equal_ct(Bytes(reply + kHelloSize, 32), want))
    return Error::make(ErrorKind::Generic,
                       io.peer + ": authentication failed (the agent does not prove our pre-shared key)");
  Digest proof = derive(psk, "envrun-ha v2 client", n);
  ENVRUN_CHECK(send_bytes(io, proof.data(), proof.size()));
  return keys_for(psk, n, true);
}

Result<SessionKeys> handshake_server(const IoContext& io, Bytes psk) {
  Nonces n;
  uint8_t hello[kHelloSize];
  ENVRUN_CHECK(read_exact(io, hello, "the client's handshake"));
  ENVRUN_CHECK(check_hello(io, hello, n.c));
  ENVRUN_CHECK(random_bytes(n.s));
  uint8_t reply[kHelloSize + 32];
  put_hello(reply, n.s);
  Digest proof = derive(psk, "envrun-ha v2 server", n);
  std::memcpy(reply + kHelloSize, proof.data(), 32);
  ENVRUN_CHECK(send_bytes(io, reply, sizeof reply));
  uint8_t theirs[32];
  auto r = read_exact(io, theirs, "the client's proof");
  if (!r) {
    if (r.error().message.find("peer closed") != std::string::npos)
      return Error::make(ErrorKind::Generic,
                         io.peer + ": authentication failed (the client gave up on our proof: a different pre-shared key?)");
    return std::move(r).error();
  }
  if (!equal_ct(Bytes(theirs, 32), derive(psk, "envrun-ha v2 client", n)))
    return Error::make(ErrorKind::Generic,
                       io.peer + ": authentication failed (the client does not prove our pre-shared key)");
  return keys_for(psk, n, false);
}

}  // namespace envrun::ha
