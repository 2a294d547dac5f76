// Taking over a seized stub process: its memory replaced by the image's mappings at
// the same addresses, the vdso moved to its old place, then (after the pages are
// written) the mm fields, per-thread kernel state, credentials, registers and masks.
#pragma once
#include <memory>

#include "ckpt/infect/infect.hpp"
#include "ckpt/restore_plan.hpp"

namespace envrun::ckpt {

class ProcessRebuild {
 public:
  ProcessRebuild(const Plan& plan, ProcPlan& pp) : plan_(plan), pp_(pp) {}
  // Unmaps the stub, maps the image's layout (contents not yet written).
  Result<void> map_layout();
  // The rest, once every page is written; leaves the threads stopped with their
  // dumped registers and masks (detach lets them run).
  Result<void> finish();
  // A system call in the process between the two (the page writer's userfaultfd,
  // restore_pages.hpp); the result as the kernel returns it (-errno on failure).
  Result<long> remote_syscall(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0) { return call(nr, a1, a2, a3); }

 private:
  Result<void> move_vdso(const std::vector<Vma>& stub_maps);
  Result<void> map_one(const Vma& v);
  Result<void> set_mm();
  Result<void> thread_state(infect::Remote& r, const ThreadCore& t);
  Result<void> creds(infect::Remote& r);
  // The thread's seccomp filters, oldest first (tsync: for every thread of the process).
  Result<void> seccomp(infect::Remote& r, const ThreadCore& t, bool tsync);
  Result<long> call(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0,
                    uint64_t a6 = 0);
  Result<uint64_t> put(size_t off, const void* data, size_t size);

  const Plan& plan_;
  ProcPlan& pp_;
  std::unique_ptr<infect::Remote> main_;
  uint64_t base_ = 0;  // our two pages: [base_] the syscall instruction, [base_ + 4096] scratch
};

// Registers as the thread must get them: a syscall it was interrupted in is restarted
// (or returns EINTR when it cannot be), as the kernel would have done.
infect::ThreadRegs resumable(const infect::ThreadRegs& dumped);

}  // namespace envrun::ckpt
