// Restoring a process tree from an image stream (envrun-image(5)).
//
// The engine recreates every open file itself, then forks a stub process (a copy of
// envrun) that re-creates the tree with the original pids (clone3 set_tid): sessions,
// process groups, zombies, threads, the fd tables, cwd, umask, rlimits, signal actions,
// pending signals and credentials. The engine then seizes every stub thread with ptrace
// and, through remote syscalls, replaces the stub's memory by the image's (same
// addresses; the vdso moved to its old place), sets the mm fields, the per-thread
// kernel state (clear_child_tid, robust list, rseq, sigaltstack), the registers and
// signal masks, and lets the tree go. Any failure kills every process it created.
#pragma once
#include <sys/types.h>

#include <functional>
#include <string>

#include "kernel/result.hpp"

namespace envrun::ckpt {

struct RestoreOptions {
  int in_fd = -1;
  std::string in_name;
  bool verify_first = true;   // scan the whole image (headers, End) before touching anything (needs a seekable
                              // fd); each payload is checked as it is read, before any process runs
  std::string old_root;       // the dumped tree's root directory on the host ("" = from the image)
  std::string new_root;       // where that root is now ("" = the same place)
  std::string image_dir;      // incremental images: where relative parent paths start ("" = ".")
  // Lazy restore (lazy_restore.hpp): private anonymous memory is left to a page server
  // that outlives the restore; in_name must then be the image file's path.
  bool lazy_pages = false;
  // With lazy_pages: the image is sparse, its pages sections fetched through this fd
  // (post-copy migration, lazy_remote.hpp); taken over by the restore. -1: none.
  int page_fetch_fd = -1;
  // Creates the root stub process and returns its host pid; the new process must call
  // `run_stub` (which never returns). A container restore creates the container here
  // (namespaces, rootfs, cgroup) with `run_stub` in place of its process. Empty: a plain
  // fork with the root's dumped pid (a host process tree).
  std::function<Result<pid_t>(const std::function<void()>& run_stub)> spawn_root;
};

struct RestoreStats {
  uint64_t read_us = 0;      // verify + reading the tree's description
  uint64_t forking_us = 0;   // the stub tree up and seized
  uint64_t memory_us = 0;    // mappings rebuilt and pages written
  uint64_t total_us = 0;
  uint64_t pages_restored = 0;
  uint64_t processes = 0, threads = 0;
  uint64_t lazy_pages = 0;  // left to the page server
};

struct RestoreResult {
  pid_t root_pid = 0;  // host pid of the tree's root
  RestoreStats stats;
  pid_t lazy_server = 0;  // the page server (lazy restore)
  int lazy_report = -1;   // its report (read_lazy_report, lazy_server.hpp); the caller closes it
};

Result<RestoreResult> restore(const RestoreOptions& o);

}  // namespace envrun::ckpt
