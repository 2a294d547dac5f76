// The cryptography of the migration transport (OpenSSL libcrypto): HMAC-SHA256 for the
// handshake proofs, the session keys and every frame's tag; SHA-256 for content hashes;
// fresh random bytes for nonces; a constant-time comparison for tags.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "kernel/result.hpp"

namespace envrun::ha {

using Digest = std::array<uint8_t, 32>;
using Bytes = std::span<const uint8_t>;

inline Bytes as_bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// HMAC-SHA256 with one key, computed over any number of update() calls; reset() starts
// the next tag with the same key (one context per direction of a channel).
class HmacSha256 {
 public:
  explicit HmacSha256(Bytes key);
  HmacSha256(HmacSha256&& o) noexcept;
  HmacSha256& operator=(HmacSha256&& o) noexcept;
  HmacSha256(const HmacSha256&) = delete;
  ~HmacSha256();
  bool ok() const { return ctx_ != nullptr; }
  void reset();
  void update(Bytes data);
  Digest final();

 private:
  void* ctx_ = nullptr;  // EVP_MAC_CTX
};

// One-shot HMAC over the concatenation of parts.
Digest hmac_sha256(Bytes key, std::initializer_list<Bytes> parts);

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  Sha256(const Sha256&) = delete;
  ~Sha256();
  void update(Bytes data);
  Digest final();

 private:
  void* ctx_ = nullptr;  // EVP_MD_CTX
};

std::string to_hex(Bytes b);
inline std::string to_hex(const Digest& d) { return to_hex(Bytes(d.data(), d.size())); }
// Lower-case 64-digit hex of a SHA-256 digest.
bool is_sha256_hex(std::string_view s);
// Equal contents, in time independent of where they differ.
bool equal_ct(Bytes a, Bytes b);
// n bytes from the kernel's CSPRNG (getrandom).
Result<void> random_bytes(std::span<uint8_t> out);

}  // namespace envrun::ha
