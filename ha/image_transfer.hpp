// The checkpoint images over a Channel, one per memory round R = 0, 1, ...:
//   client: ImageBegin {"round": R, "kind": "full" | "pages"}, Data frames, ImageEnd {"bytes": N}
//   agent:  Ok {"bytes": N} once the image is stored (or Error)
// Round 0 is a full image; a "pages" round R is an incremental image whose parent is
// round R-1, recorded as ../rR-1: the agent keeps round R in IMAGES/rR/envrun.img and
// restores the last one (ha/migrate_source.hpp).
#pragma once
#include <cstdint>
#include <string>

#include "ha/channel.hpp"

namespace envrun::ha {

// Reads the image stream from in_fd (a pipe from the checkpoint) until EOF, writes a
// copy to keep_fd (the rollback image; -1: none) and sends it. If sending fails, the
// stream is still read to its end into keep_fd, so that the checkpoint can finish and the
// copy is whole; the send error is returned. A failing copy stops reading at once.
Result<uint64_t> send_image(Channel& ch, int in_fd, int keep_fd, const std::string& keep_name, uint32_t round,
                            const std::string& kind = "full");

// After an ImageBegin message: Data frames written to out_fd until ImageEnd, whose byte
// count must match what arrived; at most max_bytes (--max-image-bytes). Every frame is
// authenticated and in sequence, so the bytes are the client's, whole and in order (a
// second SHA-256 over the stream would only cost time); the restore then checks the
// image's own checksums before anything runs.
Result<uint64_t> receive_image(Channel& ch, int out_fd, const std::string& out_name, uint64_t max_bytes);

}  // namespace envrun::ha
