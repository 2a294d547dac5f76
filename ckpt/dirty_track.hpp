// Dirty-page tracking of another process on a kernel without soft-dirty bits.
//
// A userfaultfd in write-protect mode with UFFD_FEATURE_WP_ASYNC: the kernel resolves a
// write to a protected page by itself (no fault message, the writer never waits) and
// only clears the page's uffd-wp bit. UFFD_FEATURE_WP_UNPOPULATED puts the bit on pages
// not yet populated too. PAGEMAP_SCAN on /proc/PID/pagemap then reports the pages whose
// bit is clear (PAGE_IS_WRITTEN) and, with PM_SCAN_WP_MATCHING, sets it again in the
// same walk: one scan ends a round and starts the next.
//
// The userfaultfd must be created by the target (its context is bound to the creator's
// mm): a remote userfaultfd() through infect::Remote. Every other operation acts on the
// context's mm whoever calls it, so the engine takes a copy of the fd (pidfd_getfd) and
// registers and protects from outside. The fd stays in the target's table, at a high
// number, O_CLOEXEC; it is recognised by is_tracker_fd and never dumped. Each dump moves
// it to another number (renumber), so that (fd number, inode) names the round: a parent
// image whose pair is not the target's current one is not the round's start.
#pragma once
#include <sys/types.h>

#include <optional>

#include "ckpt/infect/infect.hpp"
#include "ckpt/page_ranges.hpp"
#include "ckpt/proc_read.hpp"
#include "kernel/fd.hpp"

namespace envrun::ckpt {

class DirtyTracker {
 public:
  // A new userfaultfd made by the stopped thread behind `r` (of process `pid`), moved
  // to a high fd number there, with the async write-protect features enabled.
  static Result<DirtyTracker> create(infect::Remote& r, pid_t pid);
  // The tracker at fd `fd` of `pid`, if that fd still is the userfaultfd with inode
  // `ino`; an Error of kind NotFound otherwise (closed, replaced, exec'd).
  static Result<DirtyTracker> adopt(pid_t pid, int fd, uint64_t ino);

  // Registers the range (whole pages) in write-protect mode and protects every page.
  Result<void> protect(const PageRange& range);
  // Moves the target's fd to another number (the old one is closed): a new round name.
  Result<void> renumber(infect::Remote& r);
  // Closes the target's fd (its registrations go with it).
  Result<void> close_in_target(infect::Remote& r);

  pid_t pid() const { return pid_; }
  int target_fd() const { return target_fd_; }
  uint64_t ino() const { return ino_; }

 private:
  pid_t pid_ = 0;
  int target_fd_ = -1;
  uint64_t ino_ = 0;
  UniqueFd fd_;  // the engine's copy
};

// Closes fd `fd` of `pid` through `r` (an inherited copy of another process's tracker).
Result<void> close_tracker_copy(infect::Remote& r, pid_t pid, int fd);

// One round's result over a range of a tracked mapping.
struct DirtyScan {
  PageRanges written;  // written (or dropped) since the last protection; protected again
  PageRanges absent;   // dropped (MADV_DONTNEED ...): read as zero now; may also be in `written`
};

// Scans [range) of the process whose /proc/PID/pagemap is `pagemap_fd`. nullopt when a
// part of the range is not tracked (no async write-protect: never registered, or the
// registration is gone with the fd, a fork, an mremap): then nothing may be concluded.
Result<std::optional<DirtyScan>> scan_dirty(int pagemap_fd, const PageRange& range);

// True for an fd of a process that is an envrun tracker (a userfaultfd with exactly the
// features it enables); false for the process's own userfaultfds.
bool is_tracker_fd(const proc::FdInfo& fd);

}  // namespace envrun::ckpt
