// `envrun pull`: reference -> manifest -> blobs in the content store -> a bundle directory
// (rootfs/ + config.json + intercept.yaml) built in a temp dir next to it and renamed
// into place at the end, so a failed pull leaves nothing at the bundle path.
#pragma once
#include <cstdint>
#include <string>

#include "kernel/result.hpp"

namespace envrun::registry {

struct PullOptions {
  std::string reference;
  std::string bundle;    // default: the last component of the repository
  std::string platform;  // default: the host's
  std::string store;     // default: default_data_root()
  std::string authfile;  // default: auth_file()
  int jobs = 4;
  bool insecure = false;
  bool json = false;   // progress events on stdout, one JSON object per line
  bool quiet = false;  // no progress display, no summary: errors only
};

class PullProgress;

struct PullReport {
  std::string bundle;
  std::string manifest_digest;
  int layers = 0;
  int downloaded = 0;
  int reused = 0;
  uint64_t bytes = 0;
  uint64_t entries = 0;
};

// `progress` hears about each step (registry_progress.hpp); it does not report the error.
Result<PullReport> pull_image(const PullOptions& opts, PullProgress& progress);

// Ask a running pull to stop (async-signal-safe: SIGINT/SIGTERM handlers call it). The pull
// fails with "interrupted" within about a second, removing its temp files and directory.
void request_cancel();
bool cancel_requested();
// The error a cancelled step returns.
Error interrupted_error();

}  // namespace envrun::registry
