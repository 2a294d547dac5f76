// A bundle sync round over a Channel (both sides).
//
//   client: Manifest {"final": F, "manifest": {...}}     (manifest.hpp)
//   agent:  Need {"sha256": [contents it lacks]}
//   client: for each: Blob {"sha256": H, "size": N}, then N bytes in Data frames
//   client: BlobsDone
//   agent:  Busy... (while it builds the bundle), Synced {"files": N, "blobs": N,
//           "bytes": N, "stale": N}   (or Error)
//
// A migration syncs twice: once while the app runs (the agent only fills its content
// store; a file that changes while it is read arrives "stale" and is dropped), and once
// more after the checkpoint, when the rootfs is still (F = true: the agent builds the
// bundle and refuses a stale file).
#pragma once
#include <cstdint>
#include <set>
#include <string>

#include "ha/channel.hpp"
#include "ha/content_store.hpp"
#include "ha/limits.hpp"
#include "ha/manifest.hpp"

namespace envrun::ha {

struct SyncStats {
  uint64_t files = 0;       // regular files in the manifest
  uint64_t blobs_sent = 0;  // contents the agent lacked
  uint64_t bytes_sent = 0;  // their bytes
  uint64_t stale = 0;       // contents that changed while they were sent
};

// Client side of one round.
Result<SyncStats> send_bundle_round(Channel& ch, const std::string& bundle_dir, const Manifest& m, bool final);

struct ReceivedRound {
  bool final = false;
  Manifest manifest;
  uint64_t blobs = 0, bytes = 0, stale = 0;
};

// Agent side of one round, after its Manifest message (`msg`) arrived: answers Need and
// stores the blobs until BlobsDone (blob files are written in tmp_dir first). `received`
// counts the content bytes of the whole session against limits.max_bundle_bytes. Does not
// answer Synced: the caller builds the bundle first on a final round.
Result<ReceivedRound> receive_bundle_round(Channel& ch, const nlohmann::json& msg, const ContentStore& store,
                                           const Limits& limits, const std::string& tmp_dir, uint64_t& received);

}  // namespace envrun::ha
