// Memory contents of a stopped process into Pages / SharedMem sections: pages chosen
// with /proc/PID/pagemap (present or swapped; of private file mappings only the
// modified ones), read with process_vm_readv, zero pages dropped.
//
// Two threads per process: this one reads the target's pages into 1 MiB slots, drops
// the zero pages and computes each run's crc32c while the bytes are in cache; a
// pipeline thread (slot_pipeline.hpp) writes the slots filled before into the image.
// Stats: memdump_us is the reading thread's busy time (process_vm_readv, zero check,
// crc), memwrite_us the rest of the memory phase's wall time (waiting for the writer),
// so the two add up to the phase's duration.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include "ckpt/dump.hpp"
#include "ckpt/model.hpp"
#include "ckpt/page_ranges.hpp"

namespace envrun::ckpt {

// One slot of the dump pipeline: pages read from the target, and the runs of non-zero
// pages in it that become sections.
struct PageSlot {
  struct Run {
    SectionType type;
    uint64_t id;
    uint64_t addr;  // the payload's first 8 bytes (little-endian, as x86 stores it)
    size_t off, len;
    uint32_t crc;   // of addr (8 bytes) followed by the pages
  };
  struct BufFree {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t[], BufFree> buf;  // page-aligned
  size_t used = 0;
  std::vector<Run> runs;
};

struct MemDumper {
  ImageWriter& out;
  DumpStats& stats;
  std::set<uint64_t> shared_done;  // shared anonymous memory is dumped once (by inode)
  // The tree runs while it is read (a tracked pre-copy round, dump.cpp): a page that can no
  // longer be read (unmapped meanwhile) is left out and counted in pages_vanished; its
  // mapping lost its tracking with it, so the next round dumps whatever is there whole.
  bool live = false;

  Result<void> dump_process(pid_t host_pid, uint64_t image_pid, const std::vector<Vma>& vmas);
  // Pages known to be mapped (an incremental dump's written pages, incremental.hpp):
  // no pagemap walk, up to 1024 scattered ranges read by one process_vm_readv.
  Result<void> dump_pages(pid_t host_pid, uint64_t image_pid, const PageRanges& ranges);

 private:
  struct Pass;  // one process's dump: the pipeline, the slot being filled, the reader's time
  template <class F>
  Result<void> with_pass(pid_t host_pid, uint64_t image_pid, F&& fill);
  Result<void> next_slot(Pass& pass);
  void record_runs(Pass& pass, SectionType type, uint64_t id, uint64_t addr, size_t off, uint64_t pages);
  Result<void> dump_vmas(Pass& pass, const std::vector<Vma>& vmas);
  Result<void> dump_run(Pass& pass, SectionType type, uint64_t id, uint64_t start, uint64_t pages);
  Result<void> dump_batches(Pass& pass, const PageRanges& ranges);
  Result<void> read_pages(Pass& pass, uint64_t addr, uint8_t* to, uint64_t pages);
};

}  // namespace envrun::ckpt
