// The manifest of a bundle: what a bundle sync sends first, so that the agent can answer
// with the content it lacks (by SHA-256) and rebuild the directory exactly.
//
// Entries (a bundle's config.json / config.yaml, intercept.yaml, envrun.yaml, and the
// whole root.path tree) in depth-first order, a directory before what it holds, names
// sorted. Kinds: directories, regular files (with their SHA-256), symbolic links (their
// text), hard links to an earlier file of the bundle, FIFOs. Sockets are skipped; device
// nodes are refused (the runtime creates /dev; a migration does not recreate nodes on a
// peer's word). Every entry keeps its mode (with setuid/setgid/sticky), owner and
// modification time. On the wire: {"version":1,"entries":[[path,kind,mode,uid,gid,size,
// mtime_ns,sha256|target], ...]} with kind one of d f l h p.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ha/limits.hpp"
#include "kernel/result.hpp"

namespace envrun::ha {

enum class EntryKind : char { Dir = 'd', File = 'f', Symlink = 'l', Hardlink = 'h', Fifo = 'p' };

struct ManifestEntry {
  std::string path;  // relative to the bundle dir, '/'-separated
  EntryKind kind = EntryKind::File;
  uint32_t mode = 0;  // permission bits (07777)
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;       // regular files
  int64_t mtime_ns = 0;
  std::string sha256;      // regular files: 64 hex digits
  std::string target;      // symlink text, or the hard link's first path
};

struct Manifest {
  std::vector<ManifestEntry> entries;
  uint64_t file_count() const;
  uint64_t file_bytes() const;  // sum of regular file sizes
};

// Hashes of the files seen by an earlier walk, reused while (dev, ino, size, mtime, ctime)
// are unchanged: the second sync of a migration only re-reads what changed.
struct HashCache {
  struct Seen {
    dev_t dev;
    ino_t ino;
    uint64_t size;
    int64_t mtime_ns, ctime_ns;
    std::string sha256;
  };
  std::map<std::string, Seen> by_path;
  uint64_t hashed_bytes = 0;  // bytes read to hash (statistics)
};

// Walks the bundle (its root.path must be relative and inside it).
Result<Manifest> build_manifest(const std::string& bundle_dir, HashCache& cache);

nlohmann::json manifest_to_json(const Manifest& m);
// Parses and validates (receiver side): paths relative without "." / ".." / empty
// components, every parent an earlier directory, hard links to earlier files, hashes
// well-formed, at most limits.max_files entries and limits.max_bundle_bytes of content.
Result<Manifest> manifest_from_json(const nlohmann::json& j, const Limits& limits);

}  // namespace envrun::ha
