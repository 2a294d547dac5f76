// What an agent accepts from one migration: every bound is checked before the bytes are
// stored, and a refusal names the bound and its option.
#pragma once
#include <cstdint>

#include "ha/frame.hpp"

namespace envrun::ha {

struct Limits {
  uint32_t max_frame = kDefaultMaxPayload;        // payload bytes of one frame
  uint64_t max_bundle_bytes = 8ull << 30;         // bundle content (sum of file sizes)  --max-bundle-bytes
  uint64_t max_image_bytes = 64ull << 30;         // checkpoint image                    --max-image-bytes
  uint64_t max_manifest_bytes = 64ull << 20;      // the manifest's JSON
  uint64_t max_files = 1000000;                   // manifest entries
};

}  // namespace envrun::ha
