// What a pull tells while it works: per-layer download progress, blobs found in the store,
// layers unpacked, the end. Three displays: lines redrawn in place on a terminal (stderr),
// one JSON object per line on stdout for tools (--json), or nothing (not a terminal, --quiet).
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bundle/registry_manifest.hpp"

namespace envrun::registry {

struct PullReport;

class PullProgress {
 public:
  virtual ~PullProgress() = default;
  // The image's layers, in order; events about other blobs (the config) are ignored.
  virtual void start(const std::vector<Descriptor>& layers) { (void)layers; }
  // `done` of `total` bytes of a layer are in the store (a resumed download starts above 0).
  // Called often: the display throttles itself (the last call, done == total, always shows).
  virtual void transferring(const std::string& digest, int64_t done, int64_t total) {
    (void)digest, (void)done, (void)total;
  }
  // The layer is verified in the store; `cached` when it was there before this pull.
  virtual void fetched(const std::string& digest, bool cached) { (void)digest, (void)cached; }
  virtual void unpacked(const std::string& digest, uint64_t entries, uint64_t bytes) {
    (void)digest, (void)entries, (void)bytes;
  }
  virtual void complete(const PullReport& report) { (void)report; }
  virtual void failed(const std::string& message) { (void)message; }
};

enum class ProgressMode { Auto, Quiet, Json };

// Auto: the terminal display when stderr is a terminal, otherwise nothing.
std::unique_ptr<PullProgress> make_progress(ProgressMode mode);
std::unique_ptr<PullProgress> make_tty_progress(int fd);
std::unique_ptr<PullProgress> make_json_progress(std::FILE* out);

// "12.3 MiB" (B, KiB, MiB, GiB; one decimal above bytes).
std::string human_bytes(double bytes);

}  // namespace envrun::registry
