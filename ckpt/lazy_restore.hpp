// Lazy restore (restore --lazy-pages): what restore() does differently. The processes'
// userfaultfds see kernel-mode faults and the kernel's events (UffdPages::open_lazy);
// the plain pages sections of their registered (private anonymous) ranges, and the
// parent images' pages for them, are not written but indexed (the payload is sought
// over; the page server checks its crc32c when it reads it); once the other memory is
// written, the processes' own userfaultfd fds are closed and ours go to the page
// server (lazy_server.hpp), which runs before the last steps of the restore (they may
// touch those pages) and outlives it. Compressed sections are written at restore.
#pragma once
#include <memory>
#include <string>

#include "ckpt/incremental_restore.hpp"
#include "ckpt/lazy_server.hpp"
#include "ckpt/lazy_source.hpp"
#include "ckpt/restore_pages.hpp"

namespace envrun::ckpt {

class LazyRestore {
 public:
  // image: the image file's path (the page server reads it again), fd: the restore's.
  // fetch_fd >= 0: the image is sparse (post-copy, lazy_remote.hpp); taken over.
  static Result<LazyRestore> open(const Plan& plan, const std::string& image, int fd, int fetch_fd = -1);

  // write_memory's and ParentChain::write_pages' hooks (the UffdPages must outlive them).
  DeferPages own(const UffdPages& uffd);
  ParentChain::DeferPages parents(const UffdPages& uffd);

  // The processes' userfaultfds to the page server, which starts serving.
  Result<LazyServerHandle> start(UffdPages& uffd, pid_t root);
  uint64_t pages() const { return pages_; }                // pages left to the server
  uint64_t parent_pages() const { return parent_pages_; }  // of them, the parent images'

 private:
  LazyRestore(const Plan& plan, int fd) : plan_(&plan), fd_(fd) {}
  Result<bool> take(const UffdPages& uffd, const ProcPlan& pp, uint32_t file, const SectionHeader& h, uint64_t sec_addr,
                    uint64_t start, uint64_t end);
  const Plan* plan_;
  int fd_;
  uint32_t own_file_ = 0;
  std::unique_ptr<DiskPageSource> src_ = std::make_unique<DiskPageSource>();
  uint64_t pages_ = 0, parent_pages_ = 0;
  std::shared_ptr<RemoteFill> remote_;
};

}  // namespace envrun::ckpt
