// Putting the image's memory back into the restored processes.
//
// write_memory() reads the memory sections on this thread, in 1 MiB parts (a payload's
// crc32c is checked when its last part is read), while a pipeline thread
// (slot_pipeline.hpp) writes the parts read before into the processes. A damaged
// payload fails the restore before any restored process runs (the caller kills them).
//
// UffdPages: the pages of private anonymous mappings go in with UFFDIO_COPY, which
// allocates the page and copies into it once; process_vm_writev faults in a zeroed page
// first, then copies (1 GiB into a fresh mapping, this machine: 0.29-0.33 s against
// 0.52-0.57 s). The userfaultfd is made inside each process by a remote syscall and
// taken with pidfd_getfd; its ranges are registered (missing mode) from here. Other
// mappings, pages already present (EEXIST) and a process where any step is refused go
// through infect::write_mem. While registered, a range cannot be written any other way
// (a fault there is not handled: EFAULT), so close() must come before anything else
// writes those pages, and before the processes run.
#pragma once
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "ckpt/image.hpp"
#include "ckpt/restore_plan.hpp"
#include "kernel/fd.hpp"

namespace envrun::ckpt {

class ParentChain;
class ProcessRebuild;

class UffdPages {
 public:
  // rebuilds: one per live process of the plan, after map_layout(). Never fails: a
  // process whose userfaultfd cannot be had is written the slow way.
  static UffdPages open(const Plan& plan, const std::vector<std::unique_ptr<ProcessRebuild>>& rebuilds);
  // Lazy restore (lazy_restore.hpp): userfaultfds that also see kernel-mode faults (a
  // syscall reading a page not yet in), with the event features the page server handles.
  static UffdPages open_lazy(const Plan& plan, const std::vector<std::unique_ptr<ProcessRebuild>>& rebuilds);
  // True when [start, end) of process `pid` (host pid) is registered.
  bool registered(pid_t pid, uint64_t start, uint64_t end) const;
  // Lazy restore: the processes' own fds closed (remote close), ours handed over, the
  // ranges stay registered: (host pid, userfaultfd) for each process.
  Result<std::vector<std::pair<pid_t, UniqueFd>>> release();
  UffdPages() = default;
  UffdPages(UffdPages&&) noexcept = default;
  UffdPages& operator=(UffdPages&&) noexcept = default;

  // Writes data at addr in process `pid` (host pid). Any thread may call it.
  Result<void> write(pid_t pid, uint64_t addr, std::span<const uint8_t> data) const;
  // Unregisters everything: our ends closed, then the processes' (remote close).
  Result<void> close();
  // Processes with a userfaultfd, for the statistics.
  size_t processes() const { return procs_.size(); }

 private:
  struct Range {
    uint64_t start, end;
  };
  struct Proc {
    pid_t pid = 0;
    ProcessRebuild* rebuild = nullptr;
    UniqueFd uffd;
    long remote_fd = -1;
    std::vector<Range> ranges;  // registered, sorted
  };
  static Result<Proc> open_one(const ProcPlan& pp, ProcessRebuild& rb, bool lazy = false);
  static UffdPages open_all(const Plan& plan, const std::vector<std::unique_ptr<ProcessRebuild>>& rebuilds, bool lazy);
  Result<void> copy(const Proc& p, uint64_t addr, std::span<const uint8_t> data) const;
  std::vector<Proc> procs_;
};

// Lazy restore: takes a pages section (true: its payload consumed and left to the page
// server) or leaves it to be written now (false).
using DeferPages = std::function<Result<bool>(const SectionHeader& h, ImageReader& in)>;

// Pages and SharedMem sections from h on, until the End: read, checked and written
// (parent-pages sections go to `chain`, those `defer` takes to it). Returns the number
// of pages written.
Result<uint64_t> write_memory(ImageReader& in, std::optional<SectionHeader> h, const Plan& plan, ParentChain& chain,
                              const UffdPages& uffd, const DeferPages& defer = {});

}  // namespace envrun::ckpt
