// SHA-256 over a stream (OpenSSL EVP), for digests checked while blobs download.
#pragma once
#include <openssl/evp.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace envrun::registry {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  // "sha256:<hex>"; the hasher is reset afterwards.
  std::string finish();

 private:
  EVP_MD_CTX* ctx_;
};

// "sha256:<hex>" of a whole buffer.
std::string sha256_digest(std::string_view data);

}  // namespace envrun::registry
