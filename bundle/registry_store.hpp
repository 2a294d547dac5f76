// The content store: blobs under <data root>/blobs/sha256/<hex>, shared by every image.
// A blob is only ever written to a temp file next to its place and renamed once its
// size and digest are verified, so a present blob is a verified blob.
#pragma once
#include <cstdint>
#include <string>

#include "kernel/result.hpp"

namespace envrun::registry {

// /var/lib/envrun for root, $XDG_DATA_HOME/envrun (or ~/.local/share/envrun) otherwise.
std::string default_data_root();

class BlobStore {
 public:
  explicit BlobStore(std::string root) : root_(std::move(root)) {}
  // Creates blobs/sha256; removes temp files left by downloads killed before cleaning up.
  Result<void> init();
  const std::string& root() const { return root_; }
  std::string blob_path(const std::string& digest) const;
  // A temp name for a download of `digest` (unique per process).
  std::string temp_path(const std::string& digest) const;
  // The blob's partial download (".partial-<hex>"), kept when a transfer breaks so that the
  // next pull resumes it with a Range request; whoever downloads into it holds its flock.
  std::string partial_path(const std::string& digest) const;
  // The blob is present with this size.
  bool has(const std::string& digest, int64_t size) const;
  Result<std::string> read(const std::string& digest, size_t max = 8u << 20) const;

 private:
  std::string root_;
};

}  // namespace envrun::registry
