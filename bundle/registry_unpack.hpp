// Unpacking image layers (tar, gzip or zstd compressed) into a rootfs with libarchive.
// OCI whiteouts are applied: `.wh.NAME` removes NAME from the layers below, and
// `.wh..wh..opq` empties its directory of what the layers below put there. Entries that
// would leave the rootfs are refused: absolute names, `..` components, a parent path that
// goes through a symlink pointing outside (openat2 RESOLVE_BENEATH), hard links to
// outside names. Ownership is applied when running as root.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "kernel/result.hpp"

namespace envrun::registry {

enum class EntryKind { Root, Normal, Whiteout, Opaque };

struct EntryPath {
  EntryKind kind = EntryKind::Normal;
  std::string parent;  // relative to the rootfs, "" for its top
  std::string name;    // last component (for Whiteout: the name removed; Opaque: "")
  std::string full() const { return parent.empty() ? name : parent + "/" + name; }
};

// Classify a tar entry name ("./usr/bin/x", "etc/.wh.passwd", "var/.wh..wh..opq").
// ErrorKind::Config for names that leave the rootfs.
Result<EntryPath> classify_entry(std::string_view raw);

struct UnpackStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

// Apply the layer in `blob_path` on top of the directory `rootfs_fd`.
// `what` names the layer in messages ("layer 2/3 sha256:...").
Result<UnpackStats> unpack_layer(const std::string& blob_path, int rootfs_fd, const std::string& what);

}  // namespace envrun::registry
