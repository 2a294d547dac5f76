// Parallel blob downloads with libcurl multi: each blob streams into a temp file in the
// store while its SHA-256 and size are checked; the file is renamed into place only when
// both match. Blobs already in the store are not downloaded again. A transfer that breaks
// (network, signal, disk) leaves its partial file; the next pull re-hashes it and asks for
// the rest with `Range: bytes=N-` (a 200 answer instead of 206 restarts the blob).
#pragma once
#include <cstdint>
#include <vector>

#include "bundle/registry_client.hpp"
#include "bundle/registry_manifest.hpp"
#include "bundle/registry_progress.hpp"
#include "bundle/registry_store.hpp"
#include "kernel/result.hpp"

namespace envrun::registry {

struct FetchStats {
  int downloaded = 0;  // blobs transferred
  int reused = 0;      // blobs found in the store
  uint64_t bytes = 0;  // bytes transferred
};

Result<FetchStats> fetch_blobs(RegistryClient& client, const BlobStore& store, const std::vector<Descriptor>& blobs,
                               int jobs, PullProgress& progress);

}  // namespace envrun::registry
