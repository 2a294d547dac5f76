// `envrun migrate`, the source side: pre-copy, stop-and-copy, rollback.
//
//   1. connect, authenticate, Begin (the agent refuses an id it already has);
//   2. bundle sync while the app runs (the agent's content store fills);
//   3. pre-copy (precopy.hpp; not with --no-precopy): round 0 checkpoints the whole memory
//      with --leave-running --track-mem, rounds 1..n the pages written since (--parent-path
//      the previous round), each image sent as it is made, until a stop rule; the source
//      keeps of a round only a stub image of its inventory (the next round's parent);
//   4. the final round: a checkpoint (against the last round, if any) that freezes, dumps,
//      and then holds the stopped tree (--hold-fd) while the migration goes on;
//   5. final bundle sync (the rootfs is still now): the agent builds the bundle;
//   6. Restore: the agent restores the container from its chain of rounds, answers Running;
//   7. Commit: the agent keeps it (without a Commit it deletes it again); then the held
//      tree is killed here.
// A failed pre-copy round leaves the app running here (it never stopped). If anything
// fails after step 4 began, the held tree is let go: the app runs on here (rollback) and
// the error says so. Only a lost answer to the Commit leaves the outcome unknown: the
// tree here is killed and the error says the app may run there.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ha/bundle_sync.hpp"
#include "ha/net.hpp"
#include "ha/postcopy.hpp"
#include "ha/precopy.hpp"

namespace envrun::ha {

// One checkpoint of a migration.
struct CheckpointSpec {
  std::string image_dir;        // the round's directory here (its copy: image_dir/envrun.img)
  std::string parent;           // --parent-path, relative to image_dir ("": a full image)
  bool leave_running = false;   // a pre-copy round: the tree runs on, its memory tracked
  bool hold = false;            // the final round: the stopped tree is held until release_held()
};

// What the migration needs from the source host (cli/cmd_migrate.cpp runs envrun's own
// checkpoint and restore; unit tests use fakes).
class SourceHost {
 public:
  virtual ~SourceHost() = default;
  // Starts the checkpoint, its image written to stream_fd and the stream closed once the
  // image is whole; with spec.hold, the stopped tree is then held until release_held().
  virtual Result<void> start_checkpoint(int stream_fd, const CheckpointSpec& spec) = 0;
  // After the stream ended, for a held round: whether the checkpoint ended it because the
  // image was whole (an error: it failed, and its stream closed when it exited).
  virtual Result<void> image_whole() { return ok(); }
  // A held tree: killed (the target keeps the app) or let go (rollback).
  virtual Result<void> release_held(bool kill) = 0;
  // Waits until the checkpoint ended; its statistics (zeros when unknown).
  virtual Result<CheckpointStats> finish_checkpoint() = 0;
  virtual bool container_running() = 0;
  // After a rollback let the tree go (envrun migrate --on-rollback).
  virtual void rolled_back() {}
};

struct MigrateOptions {
  std::string id;
  std::string bundle_dir;
  Endpoint target;
  std::vector<uint8_t> psk;
  std::string work_dir;  // the rounds' stubs and a post-copy image: work_dir/rR/envrun.img (removed at the end)
  PrecopyOptions precopy;
  bool lazy_pages = true;  // a pre-copied migration: the target restores with --lazy-pages when it can
  int timeout_ms = 30000;
  std::function<void(const std::string&)> note;  // progress (debug log)
  // Run after the final image and bundle are on the target, before it is asked to
  // restore (envrun migrate --before-restore); its error rolls the migration back.
  std::function<Result<void>()> before_restore;
  // Post-copy (--lazy, ha/postcopy.hpp; no pre-copy): the image goes without its pages
  // sections' pages (holes found by postcopy_holes), which the target fetches after Running.
  bool postcopy = false;
  HoleFinder postcopy_holes;
};

struct MigrateReport {
  uint64_t total_us = 0;
  uint64_t downtime_us = 0;  // from the final round's freeze until the target runs the app
  SyncStats prefetch, final_sync;
  uint64_t image_bytes = 0;                   // all rounds
  uint64_t wire_sent = 0, wire_received = 0;  // all frames
  uint32_t rounds = 1;                        // memory rounds, the final one included
  std::vector<RoundRecord> round_log;         // each round, the final one last
  StopRule stop = StopRule::Disabled;         // what ended pre-copy
  Prediction predicted;                       // the final round's downtime, predicted at the stop
  bool budget_met = true;                     // downtime_us <= max_downtime_us
  bool lazy_pages = false;                    // the target restored lazily (its memory filled after)
  bool rounds_live() const { return !round_log.empty() && round_log.front().live; }
  int64_t target_pid = 0;
  bool postcopy = false;
  PostcopyStats post;  // what the target fetched after Running
  uint64_t all_in_us = 0;  // from the freeze until every page was in on the target
  std::vector<std::string> warnings;  // e.g. the final checkpoint failed after its image was whole
};

Result<MigrateReport> migrate(const MigrateOptions& o, SourceHost& host);

}  // namespace envrun::ha
