// Dumping a process tree into an image stream (envrun-image(5)).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ckpt/image.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt {

struct DumpOptions {
  pid_t root = 0;                 // host pid of the tree's root process
  std::string freezer_dir;        // the container's freezer cgroup ("" = ptrace only)
  bool leave_running = false;     // else every process is killed after the dump
  bool tcp_established = false;   // established TCP connections are saved (TCP_REPAIR), else refused
  int out_fd = -1;                // the image stream
  // Also an image of the inventory alone here (-1: none): what a later --parent-path dump
  // reads of its parent, when the stream itself is not kept (a migration's rounds).
  int stub_fd = -1;
  std::string out_name;           // for messages
  WriterOptions writer;
  nlohmann::json inventory;       // merged into the inventory section (container id, bundle, ...)
  // Incremental dumps (incremental.hpp): the parent's envrun.img (a dump of only the pages
  // written since it), the reference recorded to find it again ("" = parent_image), and
  // whether to leave memory trackers in a tree left running (a --parent-path dump does too).
  std::string parent_image;
  std::string parent_ref;
  bool track_mem = false;
  // Called once the image is whole, before the tree is killed (or let go): a migration
  // closes the stream here, so that the image travels while the tree dies.
  std::function<void()> image_done;
  // Without leave_running: the tree stays stopped (seized) after image_done until hold()
  // returns, true to kill it, false to let it run on (a migration's target restored it, or
  // failed: the rollback is a resume).
  std::function<bool()> hold;
};

struct DumpStats {
  uint64_t freezing_us = 0;   // from the freeze request until every thread is stopped
  uint64_t frozen_us = 0;     // from then until the tree runs again (or is killed)
  uint64_t memdump_us = 0;    // reading memory from the tree
  uint64_t memwrite_us = 0;   // writing it to the image
  uint64_t pages_scanned = 0;
  uint64_t pages_skipped_zero = 0;
  uint64_t pages_skipped_file = 0;  // unmodified pages of private file mappings
  uint64_t pages_written = 0;
  uint64_t image_bytes = 0;
  uint64_t processes = 0, threads = 0;
  uint64_t pages_in_parent = 0;       // incremental: unchanged pages the parent images hold
  uint64_t track_us = 0;              // dirty-page scans and memory trackers set up
  uint64_t pages_vanished = 0;        // live read: unmapped before they were read (dumped next round)
  bool live_read = false;             // memory read while the tree ran (a tracked pre-copy round)
  bool killed = false;                // the tree was killed after the dump
  uint64_t freeze_start_us = 0;       // CLOCK_MONOTONIC when the freeze began (microseconds)
  std::vector<std::string> warnings;  // e.g. a process dumped whole in an incremental dump
};

Result<DumpStats> dump(const DumpOptions& o);

}  // namespace envrun::ckpt
