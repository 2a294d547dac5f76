// `envrun migrate`, the source side: stop-and-copy with rollback.
//
//   1. connect, authenticate, Begin (the agent refuses an id it already has);
//   2. bundle sync while the app runs (the agent's content store fills);
//   3. checkpoint to a stream (the engine freezes, dumps, then kills the tree): the image
//      goes to the agent and to a local copy at once;
//   4. final bundle sync (the rootfs is still now): the agent builds the bundle;
//   5. Restore: the agent restores the container and answers Running;
//   6. Commit: the agent keeps it (without a Commit it deletes it again); the local copy
//      is removed.
// If anything fails after step 3 began, the app is restored on the source from the local
// copy (rollback) and the error says so. Only a lost answer to the Commit leaves the
// outcome unknown: the error says so and the local copy is kept.
// Pre-copy rounds (later) go between 2 and 3: --track-mem checkpoints with
// --leave-running, sent as "pages" rounds (image_transfer.hpp).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ha/bundle_sync.hpp"
#include "ha/net.hpp"

namespace envrun::ha {

// What the migration needs from the source host (cli/cmd_migrate.cpp runs envrun's own
// checkpoint and restore; unit tests use fakes).
class SourceHost {
 public:
  virtual ~SourceHost() = default;
  // Starts the checkpoint, its image written to stream_fd (the tree is killed once it is written).
  virtual Result<void> start_checkpoint(int stream_fd) = 0;
  // Waits until it ended.
  virtual Result<void> finish_checkpoint() = 0;
  virtual bool container_running() = 0;
  // Rollback: the container re-created from image_dir/envrun.img.
  virtual Result<void> restore_local(const std::string& image_dir) = 0;
};

struct MigrateOptions {
  std::string id;
  std::string bundle_dir;
  Endpoint target;
  std::vector<uint8_t> psk;
  std::string work_dir;  // the rollback copy: work_dir/envrun.img (the directory exists)
  int timeout_ms = 30000;
  std::function<void(const std::string&)> note;  // progress (debug log)
};

struct MigrateReport {
  uint64_t total_us = 0;
  uint64_t downtime_us = 0;  // from the checkpoint's start until the target runs the app
  SyncStats prefetch, final_sync;
  uint64_t image_bytes = 0;
  uint64_t wire_sent = 0, wire_received = 0;  // all frames
  uint32_t rounds = 1;                        // memory rounds (1: stop-and-copy)
  int64_t target_pid = 0;
};

Result<MigrateReport> migrate(const MigrateOptions& o, SourceHost& host);

}  // namespace envrun::ha
