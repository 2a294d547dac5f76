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

// AES-256-GCM with one key for a sequence of messages: message n (a frame's sequence
// number) uses the 96-bit nonce n (little-endian, 8 bytes) | 0 (4 bytes), so a key must
// never seal two messages with one number (each direction of a channel has its own key).
// The associated data is authenticated, not encrypted. open() decrypts in place and is
// false when the tag does not match (then the bytes are garbage).
inline constexpr size_t kAeadTagSize = 16;
using AeadTag = std::array<uint8_t, kAeadTagSize>;
class Aes256Gcm {
 public:
  Aes256Gcm(Bytes key, bool encrypt);
  Aes256Gcm(Aes256Gcm&& o) noexcept;
  Aes256Gcm& operator=(Aes256Gcm&& o) noexcept;
  Aes256Gcm(const Aes256Gcm&) = delete;
  ~Aes256Gcm();
  bool ok() const { return ctx_ != nullptr; }
  // in and out may be the same buffer.
  bool seal(uint64_t n, Bytes aad, const uint8_t* in, size_t len, uint8_t* out, AeadTag& tag);
  bool open(uint64_t n, Bytes aad, uint8_t* data, size_t len, const AeadTag& tag);

 private:
  void* ctx_ = nullptr;  // EVP_CIPHER_CTX
  bool encrypt_ = true;
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
