// Pre-copy rounds of a live migration (issue 7): what one round did, when to stop.
//
// Round 0 sends the whole memory while the app runs (a --leave-running --track-mem
// checkpoint), rounds 1..n the pages written since the previous round (--parent-path the
// previous round), the final round (a --parent-path checkpoint that stops the tree) what
// is left. After each pre-copy round next_step() decides, like P.Haul's iteration rules:
//   few-pages    the dirty set fell below min_pages
//   budget       the predicted final round fits --max-downtime
//   no-progress  the dirty set shrank by less than min_progress since the previous round
//   max-rounds   --max-rounds pre-copy rounds were sent
// The prediction fits the rounds' wall time (checkpoint start until the agent stored the
// image) as fixed + bytes / throughput through round 0 and the latest round, takes the
// latest round's image as the final one's size, and adds the target's restore, which
// cannot be measured before it runs: image bytes of the whole chain at
// restore_bytes_per_s, plus restore_fixed_us (a lazy restore: the final image's bytes
// only, plus lazy_restore_fixed_us).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace envrun::ha {

struct PrecopyOptions {
  bool enabled = true;                    // --no-precopy: stop-and-copy only
  uint32_t max_rounds = 8;                // pre-copy rounds before the final one (--max-rounds)
  uint64_t max_downtime_us = 100000;      // --max-downtime
  uint64_t min_pages = 64;                // a dirty set below this: stop
  double min_progress = 0.10;             // the dirty set must shrink by this fraction per round
  uint64_t restore_bytes_per_s = 2000000000;  // assumed for the target's restore of the chain
  uint64_t restore_fixed_us = 40000;
  // The target restores with --lazy-pages: the app runs before the chain's pages are in, so
  // only the final image is read before it runs (the fixed part measured on the 1 GiB
  // bench: 50-90 ms until session 7, 40-50 ms since the parents' headers are walked once).
  bool lazy_restore = false;
  uint64_t lazy_restore_fixed_us = 50000;
};

// What `envrun checkpoint --stats` reported for one round.
struct CheckpointStats {
  uint64_t freezing_us = 0, frozen_us = 0;
  uint64_t pages_written = 0, pages_in_parent = 0;
  uint64_t image_bytes = 0;
  uint64_t freeze_start_us = 0;  // CLOCK_MONOTONIC (steady_clock) when the freeze began; 0: unknown
};

// Parses the "Dump statistics" lines of `envrun checkpoint --stats` (missing lines: 0).
CheckpointStats parse_dump_stats(const std::string& text);

struct RoundRecord {
  uint32_t round = 0;
  bool live = true;             // a pre-copy round (the app ran on); false: the final one
  std::string kind;             // "full" (round 0) or "pages"
  uint64_t pages = 0;           // memory pages in the round's image
  uint64_t pages_in_parent = 0; // pages the earlier rounds hold
  uint64_t image_bytes = 0;     // the image stream
  uint64_t wire_bytes = 0;      // bytes on the wire while the round was sent (frames, tags)
  uint64_t wall_us = 0;         // from the checkpoint's start until the agent stored the image
  uint64_t pause_us = 0;        // the app stopped: freezing + frozen
};

enum class StopRule { None, Disabled, FewPages, Budget, NoProgress, MaxRounds };
const char* stop_rule_name(StopRule r);

struct Prediction {
  uint64_t fixed_us = 0, transfer_us = 0, restore_us = 0;
  uint64_t downtime_us() const { return fixed_us + transfer_us + restore_us; }
};

// The final round's downtime if it came now, after the pre-copy rounds done (at least one).
Prediction predict_final(const std::vector<RoundRecord>& done, const PrecopyOptions& o);

// After each pre-copy round: StopRule::None to send another one, else why pre-copy ends.
StopRule next_step(const std::vector<RoundRecord>& done, const PrecopyOptions& o);

}  // namespace envrun::ha
