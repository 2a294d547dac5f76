// HMAC-SHA256 and SHA-256 through OpenSSL 3's EVP interfaces; nonces from getrandom(2).
#include "ha/crypto.hpp"

#include <sys/random.h>

#include <cerrno>
#include <algorithm>
#include <utility>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace envrun::ha {

namespace {

EVP_MAC* hmac_algorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

}  // namespace

HmacSha256::HmacSha256(Bytes key) {
  EVP_MAC* mac = hmac_algorithm();
  if (!mac) return;
  auto* ctx = EVP_MAC_CTX_new(mac);
  if (!ctx) return;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx, key.data(), key.size(), params) != 1) {
    EVP_MAC_CTX_free(ctx);
    return;
  }
  ctx_ = ctx;
}

HmacSha256::HmacSha256(HmacSha256&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}

HmacSha256& HmacSha256::operator=(HmacSha256&& o) noexcept {
  if (this != &o) {
    EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(ctx_));
    ctx_ = std::exchange(o.ctx_, nullptr);
  }
  return *this;
}

HmacSha256::~HmacSha256() { EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(ctx_)); }

void HmacSha256::reset() { EVP_MAC_init(static_cast<EVP_MAC_CTX*>(ctx_), nullptr, 0, nullptr); }

void HmacSha256::update(Bytes data) {
  if (!data.empty()) EVP_MAC_update(static_cast<EVP_MAC_CTX*>(ctx_), data.data(), data.size());
}

Aes256Gcm::Aes256Gcm(Bytes key, bool encrypt) : encrypt_(encrypt) {
  if (key.size() != 32) return;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (!ctx) return;
  int r = encrypt ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nullptr)
                  : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nullptr);
  if (r != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return;
  }
  ctx_ = ctx;
}

Aes256Gcm::Aes256Gcm(Aes256Gcm&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)), encrypt_(o.encrypt_) {}

Aes256Gcm& Aes256Gcm::operator=(Aes256Gcm&& o) noexcept {
  if (this != &o) {
    EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(ctx_));
    ctx_ = std::exchange(o.ctx_, nullptr);
    encrypt_ = o.encrypt_;
  }
  return *this;
}

Aes256Gcm::~Aes256Gcm() { EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(ctx_)); }

namespace {

std::array<uint8_t, 12> nonce_of(uint64_t n) {
  std::array<uint8_t, 12> iv{};
  for (int i = 0; i < 8; ++i) iv[size_t(i)] = uint8_t(n >> (8 * i));
  return iv;
}

// EVP's lengths are ints: long buffers go in steps.
template <class F>
bool in_steps(size_t len, F&& step) {
  constexpr size_t kStep = size_t(1) << 30;
  for (size_t off = 0; off < len; off += kStep)
    if (!step(off, int(std::min(kStep, len - off)))) return false;
  return true;
}

}  // namespace

bool Aes256Gcm::seal(uint64_t n, Bytes aad, const uint8_t* in, size_t len, uint8_t* out, AeadTag& tag) {
  auto* ctx = static_cast<EVP_CIPHER_CTX*>(ctx_);
  if (!ctx || !encrypt_) return false;
  auto iv = nonce_of(n);
  int k = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv.data()) != 1) return false;
  if (!aad.empty() && EVP_EncryptUpdate(ctx, nullptr, &k, aad.data(), int(aad.size())) != 1) return false;
  if (!in_steps(len, [&](size_t off, int step) { return EVP_EncryptUpdate(ctx, out + off, &k, in + off, step) == 1; }))
    return false;
  return EVP_EncryptFinal_ex(ctx, out + len, &k) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, int(tag.size()), tag.data()) == 1;
}

bool Aes256Gcm::open(uint64_t n, Bytes aad, uint8_t* data, size_t len, const AeadTag& tag) {
  auto* ctx = static_cast<EVP_CIPHER_CTX*>(ctx_);
  if (!ctx || encrypt_) return false;
  auto iv = nonce_of(n);
  int k = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, iv.data()) != 1) return false;
  if (!aad.empty() && EVP_DecryptUpdate(ctx, nullptr, &k, aad.data(), int(aad.size())) != 1) return false;
  if (!in_steps(len, [&](size_t off, int step) { return EVP_DecryptUpdate(ctx, data + off, &k, data + off, step) == 1; }))
    return false;
  AeadTag t = tag;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, int(t.size()), t.data()) != 1) return false;
  return EVP_DecryptFinal_ex(ctx, data + len, &k) == 1;
}

Digest HmacSha256::final() {
  Digest d{};
  size_t n = 0;
  EVP_MAC_final(static_cast<EVP_MAC_CTX*>(ctx_), d.data(), &n, d.size());
  return d;
}

Digest hmac_sha256(Bytes key, std::initializer_list<Bytes> parts) {
  HmacSha256 h(key);
  for (auto p : parts) h.update(p);
  return h.final();
}

Sha256::Sha256() {
  auto* ctx = EVP_MD_CTX_new();
  if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1) ctx_ = ctx;
  else EVP_MD_CTX_free(ctx);
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(Bytes data) {
  if (!data.empty()) EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

Digest Sha256::final() {
  Digest d{};
  unsigned n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), d.data(), &n);
  return d;
}

std::string to_hex(Bytes b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t c : b) s += digits[c >> 4], s += digits[c & 15];
  return s;
}

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool equal_ct(Bytes a, Bytes b) { return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

Result<void> random_bytes(std::span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::getrandom(out.data() + got, out.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("getrandom");
    got += size_t(n);
  }
  return ok();
}

}  // namespace envrun::ha
