// Incremental checkpoints, dump side (envrun-image(5) INCREMENTAL IMAGES).
//
// A dump that leaves the tree running with memory tracking (--track-mem, or any
// --parent-path dump with --leave-running) leaves a tracker (dirty_track.hpp) in every
// process and records in the image's inventory, under "track", what each tracker covers:
// fd number, inode, process start time, ranges. The next dump given that image as its
// parent scans each tracked range: pages written since are dumped, pages present and
// not written are "in the parent" (parent-pages sections list them), dropped pages read
// as zero. Mappings or parts of them that were not tracked, and processes without a
// tracker of the parent's round, are dumped whole (with a warning): the image is
// always complete together with its parents.
#pragma once
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ckpt/dump.hpp"
#include "ckpt/model.hpp"
#include "ckpt/page_ranges.hpp"

namespace envrun::ckpt {

// One process's tracker as an image records it.
struct TrackedProcess {
  pid_t pid = 0;            // namespace pid (the image's)
  pid_t host_pid = 0;
  uint64_t start_time = 0;  // field 22 of /proc/PID/stat: a reused pid is another process
  int fd = -1;              // the tracker's fd number in the process (a new one each round)
  uint64_t ino = 0;         // the tracker's inode
  PageRanges ranges;        // registered and write-protected when the image was taken
};

struct TrackRecord {
  std::string id;  // random; a child image names its parent's
  pid_t root_host_pid = 0;
  uint64_t root_start_time = 0;
  std::vector<TrackedProcess> procs;  // those with a tracker
};

nlohmann::json to_json(const TrackRecord& t);
Result<TrackRecord> track_from_json(const nlohmann::json& j, const std::string& what);

// The inventory (first section) of the image in fd, its checksum verified.
Result<nlohmann::json> read_inventory(int fd, const std::string& name);

// A process of the frozen, seized tree, in the image's order (zombies are skipped).
struct LiveProcess {
  pid_t host_pid = 0;
  std::vector<pid_t> tids;
  const ProcessCore* core = nullptr;
};

class MemoryTracking {
 public:
  // Before the image is written, the tree frozen and seized: reads the parent's record
  // (refusing a parent without one, or of another tree), moves each tracker to a new fd
  // number, scans what the parent's round tracked (written pages are protected again),
  // and makes trackers where there are none (when arming).
  static Result<std::unique_ptr<MemoryTracking>> begin(const DumpOptions& o, const std::vector<LiveProcess>& live);
  ~MemoryTracking();

  // What MemDumper must dump of live[i] as a full dump would: its mappings without the
  // tracked parts (nullptr: all of core->vmas) ...
  const std::vector<Vma>* dump_vmas(size_t i) const;
  // ... and of the tracked parts, the pages written since the parent (MemDumper::dump_pages).
  const PageRanges* written_pages(size_t i) const;
  // "parent" and "track" in the new image's inventory.
  void annotate(nlohmann::json& inventory) const;
  // One parent-pages section per tracked process (after the memory sections).
  Result<void> write_sections(ImageWriter& w) const;
  // After the image is written: registers and protects the ranges tracked from now on.
  // Failures become warnings (those ranges are dumped whole next time).
  void arm();
  void add_stats(DumpStats& st) const;

 private:
  struct Proc;
  MemoryTracking() = default;
  Result<void> load_parent(const DumpOptions& o, const std::vector<LiveProcess>& live);
  Result<void> take_over(Proc& p, const LiveProcess& lp);
  Result<void> scan(Proc& p, const LiveProcess& lp);
  bool arming_ = false;
  std::string parent_ref_;
  std::unique_ptr<TrackRecord> parent_;
  TrackRecord record_;
  std::vector<std::unique_ptr<Proc>> procs_;  // parallel to `live`
  std::vector<std::string> warnings_;
  uint64_t track_us_ = 0;
};

}  // namespace envrun::ckpt
