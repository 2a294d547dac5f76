// The wire format of the migration transport (after the handshake, see handshake.hpp).
//
// Every frame:  type u8 | flags u8 | reserved u16 (0) | length u32 | seq u64   (16 bytes,
// little-endian), then `length` payload bytes encrypted with AES-256-GCM under the session
// key of that direction (nonce: the sequence number), then the 16-byte GCM tag over the
// header (associated data) and the payload. Sequence numbers
// count the frames of one direction from 0; a receiver accepts only the next one (a
// replayed, dropped or reordered frame is refused). A receiver refuses a length above its
// own bound before reading the payload. A message larger than one frame is split: every
// frame but the last carries kFlagMore.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace envrun::ha {

inline constexpr size_t kFrameHeaderSize = 16;
inline constexpr size_t kFrameTagSize = 16;
inline constexpr uint8_t kFlagMore = 1;
inline constexpr uint32_t kDefaultMaxPayload = 1u << 20;  // 1 MiB
inline constexpr uint32_t kMaxPayloadCeiling = 64u << 20;

enum class FrameType : uint8_t {
  Welcome = 1,     // agent -> client: {"agent": version, "limits": {...}}
  Begin = 2,       // client -> agent: {"id": ID, "op": "migrate"}
  Ok = 3,          // either way: the step is accepted (JSON, may be empty)
  Error = 4,       // either way: {"message": ...}; the session ends
  Manifest = 5,    // client -> agent: a bundle manifest (JSON, split with kFlagMore)
  Need = 6,        // agent -> client: {"sha256": [hashes the agent lacks]}
  Blob = 7,        // client -> agent: {"sha256": H, "size": N}, then N bytes as Data frames
  Data = 8,        // raw bytes of the current blob or image
  BlobsDone = 9,   // client -> agent: no more blobs in this sync round
  Synced = 10,     // agent -> client: {"files": N, "blobs": N, "bytes": N, "stale": N}
  ImageBegin = 11, // client -> agent: {"round": R, "kind": "full"}; then Data frames
  ImageEnd = 12,   // client -> agent: {"bytes": N, "sha256": H}
  Restore = 13,    // client -> agent: restore the image (after the final sync)
  Busy = 14,       // agent -> client: keep-alive while a long step runs
  Running = 15,    // agent -> client: {"pid": P, "restore_ms": T}
  Commit = 16,     // client -> agent: the source has let go; keep the container
  Committed = 17,  // agent -> client
  // Post-copy (envrun migrate --lazy, ha/postcopy.hpp):
  LazyHoles = 24,  // client -> agent, after ImageBegin: {"size": N, "holes": [[off, len], ...]}; then Data frames
  PageFetch = 25,  // agent -> client, after Running: {"off", "len", "fault"}: send these image bytes
  FetchEnd = 26,   // client -> agent: the Data frames of one PageFetch are all sent
  PagesIn = 27,    // agent -> client: {"pages_fetched", "bytes", "fault_ranges", "background_ranges", "all_in_ms"}
  // `envrun drain` (Begin {"op": "drain", "to": PEER?, "dry_run": bool}; agent/drain.hpp):
  DrainPlan = 32,      // agent -> client: {"moves": [{"id", "to"}], "stays": [{"id", "reason"}]}
  DrainProgress = 33,  // agent -> client: {"line": text}
  DrainResult = 34,    // agent -> client: {"id", "to", "ok": bool, "message"}
  DrainDone = 35,      // agent -> client: {"moved": N, "failed": N, "stayed": N, "dry_run": bool}
};

const char* frame_type_name(FrameType t);

struct FrameHeader {
  FrameType type{};
  uint8_t flags = 0;
  uint16_t reserved = 0;
  uint32_t length = 0;
  uint64_t seq = 0;
};

inline void encode_header(const FrameHeader& h, uint8_t out[kFrameHeaderSize]) {
  out[0] = uint8_t(h.type);
  out[1] = h.flags;
  out[2] = uint8_t(h.reserved), out[3] = uint8_t(h.reserved >> 8);
  for (int i = 0; i < 4; ++i) out[4 + i] = uint8_t(h.length >> (8 * i));
  for (int i = 0; i < 8; ++i) out[8 + i] = uint8_t(h.seq >> (8 * i));
}

inline FrameHeader decode_header(const uint8_t in[kFrameHeaderSize]) {
  FrameHeader h;
  h.type = FrameType(in[0]);
  h.flags = in[1];
  h.reserved = uint16_t(in[2] | in[3] << 8);
  for (int i = 0; i < 4; ++i) h.length |= uint32_t(in[4 + i]) << (8 * i);
  for (int i = 0; i < 8; ++i) h.seq |= uint64_t(in[8 + i]) << (8 * i);
  return h;
}

}  // namespace envrun::ha
