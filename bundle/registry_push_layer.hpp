// A bundle's rootfs packed as one image layer: a pax tar (libarchive) compressed with gzip
// (zlib, header mtime 0), hashed twice in the same pass (diff_id of the tar, digest of the
// gzip stream). Deterministic: entries in byte order of their names, numeric owners only,
// mtimes kept (no atime/ctime, no user or group names), hard links kept as links; so an
// unchanged rootfs packs to the same digest and a second push uploads nothing.
#pragma once
#include <cstdint>
#include <string>

#include "kernel/result.hpp"

namespace envrun::registry {

struct PackedLayer {
  std::string digest;   // sha256 of the compressed layer
  int64_t size = 0;     // compressed bytes
  std::string diff_id;  // sha256 of the uncompressed tar
  uint64_t entries = 0;
};

// Pack `rootfs` into out_fd (written from its current offset).
Result<PackedLayer> pack_rootfs(const std::string& rootfs, int out_fd);

}  // namespace envrun::registry
