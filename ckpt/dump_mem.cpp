// MemDumper (dump_mem.hpp). Pages payload: 8-byte little-endian address, then whole pages.
#include "ckpt/dump_mem.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "ckpt/clock.hpp"
#include "ckpt/crc32c.hpp"
#include "ckpt/infect/infect.hpp"
#include "ckpt/slot_pipeline.hpp"
#include "kernel/fd.hpp"

namespace envrun::ckpt {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPresent = 1ull << 63, kSwapped = 1ull << 62, kFilePage = 1ull << 61;
// 1 MiB slots stay in the cache between the read, the crc and the write (16 MiB ones
// did not: measured slower); 4 of them keep both threads busy.
constexpr size_t kSlotBytes = 1u << 20;
constexpr size_t kSlots = 4;

// A present page is rarely zero: the first non-zero word ends the check.
bool zero_page(const uint8_t* p) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < kPage / 8; i += 8)
    if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7]) return false;
  return true;
}

PageSlot make_slot() {
  PageSlot s;
  s.buf.reset(static_cast<uint8_t*>(std::aligned_alloc(kPage, kSlotBytes)));
  s.runs.reserve(kSlotBytes / kPage / 2 + 1);
  return s;
}

// The consumer: each run of the slot becomes one section.
Result<void> write_slot(ImageWriter& out, PageSlot& s) {
  for (auto& r : s.runs) {
    iovec iov[2] = {{&r.addr, 8}, {s.buf.get() + r.off, r.len}};
    ENVRUN_CHECK(out.add_gather_crc(r.type, r.id, std::span<const iovec>(iov, 2), r.crc));
  }
  return ok();
}

}  // namespace

void PageSlot::BufFree::operator()(uint8_t* p) const { std::free(p); }

struct MemDumper::Pass {
  Pass(MemDumper& m, pid_t host, uint64_t image)
      : host_pid(host), image_pid(image), pipe(kSlots, make_slot, [&m](PageSlot& s) { return write_slot(m.out, s); }) {}
  pid_t host_pid;
  uint64_t image_pid;
  SlotPipeline<PageSlot> pipe;
  PageSlot* slot = nullptr;  // being filled
  uint64_t wait_us = 0;      // waiting for the writer
};

// The slot being filled is handed to the writer; the next free one is taken.
Result<void> MemDumper::next_slot(Pass& p) {
  if (p.slot) p.pipe.submit(p.slot), p.slot = nullptr;
  uint64_t w0 = now_us();
  p.slot = ENVRUN_TRY(p.pipe.acquire());
  p.wait_us += now_us() - w0;
  if (!p.slot->buf) return Error::make(ErrorKind::System, "dump: cannot allocate a 1 MiB page buffer");
  p.slot->used = 0;
  p.slot->runs.clear();
  return ok();
}

// The runs of non-zero pages among `pages` pages read to slot offset `off` from `addr`.
void MemDumper::record_runs(Pass& p, SectionType type, uint64_t id, uint64_t addr, size_t off, uint64_t pages) {
  PageSlot& s = *p.slot;
  const uint8_t* base = s.buf.get() + off;
  for (uint64_t i = 0; i < pages;) {
    if (zero_page(base + i * kPage)) {
      ++stats.pages_skipped_zero, ++i;
      continue;
    }
    uint64_t j = i + 1;
    while (j < pages && !zero_page(base + j * kPage)) ++j;
    PageSlot::Run r{type, id, addr + i * kPage, off + i * kPage, size_t((j - i) * kPage), 0};
    r.crc = crc32c_extend(crc32c(&r.addr, 8), base + i * kPage, r.len);
    s.runs.push_back(r);
    stats.pages_written += j - i;
    i = j;
  }
}

// Reads pages at addr into `to`; live, the pages that cannot be read are left zero
// (record_runs drops them) and counted.
Result<void> MemDumper::read_pages(Pass& p, uint64_t addr, uint8_t* to, uint64_t pages) {
  auto r = infect::read_mem(p.host_pid, addr, std::span<uint8_t>(to, pages * kPage));
  if (r || !live) return r;
  for (uint64_t i = 0; i < pages; ++i)
    if (!infect::read_mem(p.host_pid, addr + i * kPage, std::span<uint8_t>(to + i * kPage, kPage))) {
      std::memset(to + i * kPage, 0, kPage);
      ++stats.pages_vanished;
    }
  return ok();
}

// Reads [start, start + pages) into slots and records the runs of non-zero pages.
Result<void> MemDumper::dump_run(Pass& p, SectionType type, uint64_t id, uint64_t start, uint64_t pages) {
  for (uint64_t done = 0; done < pages;) {
    if (!p.slot || p.slot->used + kPage > kSlotBytes) ENVRUN_CHECK(next_slot(p));
    PageSlot& s = *p.slot;
    uint64_t n = std::min<uint64_t>((kSlotBytes - s.used) / kPage, pages - done);
    uint64_t addr = start + done * kPage;
    ENVRUN_CHECK(read_pages(p, addr, s.buf.get() + s.used, n));
    record_runs(p, type, id, addr, s.used, n);
    s.used += n * kPage;
    done += n;
  }
  return ok();
}

// Scattered ranges gathered into the slot with one process_vm_readv per batch (a
// batch the plain call cannot read whole, e.g. a PROT_NONE page, goes range by range
// through read_mem and its /proc/PID/mem fallback).
Result<void> MemDumper::dump_batches(Pass& p, const PageRanges& ranges) {
  constexpr size_t kBatch = 1024;  // IOV_MAX
  struct Part {
    uint64_t addr, pages;
    size_t off;
  };
  std::vector<Part> parts;
  std::vector<iovec> remote;
  size_t pending = 0;  // bytes of `parts`, after p.slot->used
  auto flush = [&]() -> Result<void> {
    if (parts.empty()) return ok();
    PageSlot& s = *p.slot;
    iovec local{s.buf.get() + s.used, pending};
    ssize_t got = ::process_vm_readv(p.host_pid, &local, 1, remote.data(), remote.size(), 0);
    for (const auto& q : parts) {
      if (got != ssize_t(pending))
        ENVRUN_CHECK(read_pages(p, q.addr, s.buf.get() + q.off, q.pages));
      record_runs(p, SectionType::Pages, p.image_pid, q.addr, q.off, q.pages);
    }
    s.used += pending;
    pending = 0, parts.clear(), remote.clear();
    return ok();
  };
  for (const auto& r : ranges) {
    stats.pages_scanned += r.bytes() / kPage;
    for (uint64_t addr = r.start; addr < r.end;) {
      if (!p.slot || p.slot->used + pending + kPage > kSlotBytes) {
        ENVRUN_CHECK(flush());
        ENVRUN_CHECK(next_slot(p));
      }
      uint64_t n = std::min<uint64_t>((kSlotBytes - p.slot->used - pending) / kPage, (r.end - addr) / kPage);
      parts.push_back({addr, n, p.slot->used + pending});
      remote.push_back({reinterpret_cast<void*>(addr), n * kPage});
      pending += n * kPage;
      addr += n * kPage;
      if (parts.size() == kBatch) ENVRUN_CHECK(flush());
    }
  }
  return flush();
}

Result<void> MemDumper::dump_vmas(Pass& p, const std::vector<Vma>& vmas) {
  std::string pagemap_path = "/proc/" + std::to_string(p.host_pid) + "/pagemap";
  UniqueFd pagemap(::open(pagemap_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap) return Error::sys(pagemap_path);
  std::vector<uint64_t> pm;
  for (const auto& v : vmas) {
    if (v.kind == Vma::Kind::Vdso || v.kind == Vma::Kind::Vvar || v.kind == Vma::Kind::VvarVclock ||
        v.kind == Vma::Kind::Vsyscall)
      continue;
    if (v.kind == Vma::Kind::File && v.shared) continue;  // the file holds the contents
    uint64_t pages = v.size() / kPage;
    if (v.kind == Vma::Kind::SharedAnon) {
      if (!shared_done.insert(v.ino).second) continue;
      stats.pages_scanned += pages;
      ENVRUN_CHECK(dump_run(p, SectionType::SharedMem, v.ino, v.start, pages));
      continue;
    }
    pm.resize(pages);
    ssize_t n = ::pread(pagemap.get(), pm.data(), pages * 8, off_t(v.start / kPage * 8));
    if (n != ssize_t(pages * 8)) return Error::sys(pagemap_path + ": read");
    auto wanted = [&](uint64_t e) {
      if (e & kSwapped) return true;
      if (!(e & kPresent)) return false;
      return v.kind != Vma::Kind::File || !(e & kFilePage);
    };
    for (uint64_t i = 0; i < pages;) {
      if (!wanted(pm[i])) {
        if ((pm[i] & kPresent) && v.kind == Vma::Kind::File) ++stats.pages_skipped_file;
        ++i;
        continue;
      }
      uint64_t j = i + 1;
      while (j < pages && wanted(pm[j])) ++j;
      stats.pages_scanned += j - i;
      ENVRUN_CHECK(dump_run(p, SectionType::Pages, p.image_pid, v.start + i * kPage, j - i));
      i = j;
    }
  }
  return ok();
}

// One process's pass: `fill` reads into slots, the pipeline writes them.
template <class F>
Result<void> MemDumper::with_pass(pid_t host_pid, uint64_t image_pid, F&& fill) {
  uint64_t t0 = now_us();
  Pass p(*this, host_pid, image_pid);
  auto read = fill(p);
  if (p.slot) {
    if (read && !p.slot->runs.empty()) p.pipe.submit(p.slot);
    else p.pipe.release(p.slot);
    p.slot = nullptr;
  }
  uint64_t t1 = now_us();
  auto written = p.pipe.finish();
  uint64_t t2 = now_us();
  uint64_t waited = p.wait_us + (t2 - t1);
  stats.memwrite_us += waited;
  stats.memdump_us += (t2 - t0) - waited;
  if (!read) return read;
  return written;
}

Result<void> MemDumper::dump_process(pid_t host_pid, uint64_t image_pid, const std::vector<Vma>& vmas) {
  return with_pass(host_pid, image_pid, [&](Pass& p) { return dump_vmas(p, vmas); });
}

Result<void> MemDumper::dump_pages(pid_t host_pid, uint64_t image_pid, const PageRanges& ranges) {
  return with_pass(host_pid, image_pid, [&](Pass& p) { return dump_batches(p, ranges); });
}

}  // namespace envrun::ckpt
