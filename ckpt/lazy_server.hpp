// Lazy restore (--lazy-pages): the page server. It holds a userfaultfd per restored
// process whose private anonymous mappings stay registered (missing mode), answers
// each fault first (UFFDIO_COPY of the section holding the page: up to 1 MiB around
// it; a page no source holds gets UFFDIO_ZEROPAGE, as it was zero at the dump or was
// dropped since), copies every other page in the background, and exits when every
// page is in, closing the userfaultfds then (nothing is registered any more).
//
// Kernel events (requested with UFFD_FEATURE_EVENT_FORK/REMAP/REMOVE/UNMAP): a fork
// hands over the child's new userfaultfd, which then wants what its parent still
// wanted; mremap moves the wanted pages; munmap and MADV_DONTNEED/MADV_REMOVE drop
// them (they read zero from then on, as without lazy restore). A process that exits or
// execs is dropped (its copies fail with ESRCH).
//
// Safety: a closed userfaultfd would give zero pages where the image's were still to
// come. On any error (a page the source cannot give: unreadable, damaged, lost peer)
// the server SIGKILLs the whole tree and waits for it to die before its userfaultfds
// close. The watchdog (a second process holding the same userfaultfds) does the same
// when the server itself dies before it is done.
//
// Test hooks, in the server's environment: ENVRUN_LAZY_TEST_SKIP=N drops every N-th
// background chunk as if it were copied (the integration test proves that the
// programs' own checks then fail); ENVRUN_LAZY_TEST_DELAY_US=U waits U us before each
// chunk, a fault's too (time for the test to kill the server, or the agent, half-way:
// with sections asked ahead, an app that faults all over its memory had every page in
// within a second even with the background slowed).
#pragma once
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "ckpt/lazy_extents.hpp"
#include "ckpt/lazy_source.hpp"
#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt {

struct LazyTarget {
  pid_t host_pid = 0;
  uint64_t image_pid = 0;
  UniqueFd uffd;  // API done with the event features, ranges registered
  LazyExtents want;
};

struct LazyServerSetup {
  std::vector<LazyTarget> targets;
  std::unique_ptr<LazyPageSource> source;
  pid_t root = 0;  // the tree's root (host pid): killed with every descendant on failure
};

struct LazyServerStats {
  uint64_t all_in_us = 0;       // from the server's start until every page was in
  uint64_t pages_copied = 0;    // UFFDIO_COPY'd pages
  uint64_t faults = 0;          // page faults answered
  uint64_t zero_pages = 0;      // faults answered with a zero page
  uint64_t chunks = 0;          // chunks taken from the source
};

// The server's body, in the calling process; returns once every page is in (the
// userfaultfds closed) or on failure, after the tree was killed.
Result<LazyServerStats> run_lazy_server(LazyServerSetup& s);

struct LazyServerHandle {
  pid_t pid = 0;     // the server (not our child: reparented)
  UniqueFd report;   // one line when it ends: "done US PAGES FAULTS ZERO" or "failed: MESSAGE"
};
// Forks the server off (twice: it outlives the caller, in the caller's cgroups, its
// stdio on /dev/null, every fd but its own closed) and a watchdog next to it.
Result<LazyServerHandle> start_lazy_server(LazyServerSetup&& s);

// Reads the server's report line (blocks until the server ends).
struct LazyReport {
  bool ok = false;
  std::string message;  // on failure
  LazyServerStats stats;
};
LazyReport read_lazy_report(int fd);

}  // namespace envrun::ckpt
