// MemDumper (dump_mem.hpp). Pages payload: 8-byte little-endian address, then whole pages.
#include "ckpt/clock.hpp"
#include "ckpt/dump_mem.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "ckpt/infect/infect.hpp"
#include "kernel/fd.hpp"

namespace envrun::ckpt {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPresent = 1ull << 63, kSwapped = 1ull << 62, kFilePage = 1ull << 61;

bool zero_page(const uint8_t* p) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t acc = 0;
  for (size_t i = 0; i < kPage / 8; i += 8)
    acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
  return acc == 0;
}

}  // namespace

// Reads [start, start + pages) in buffer-sized pieces and writes the non-zero runs.
Result<void> MemDumper::dump_run(pid_t host_pid, SectionType type, uint64_t id, uint64_t start, uint64_t pages) {
  const uint64_t per = buf.size() / kPage;
  for (uint64_t done = 0; done < pages;) {
    uint64_t n = std::min(per, pages - done);
    uint64_t addr = start + done * kPage;
    uint64_t t0 = now_us();
    ENVRUN_CHECK(infect::read_mem(host_pid, addr, std::span<uint8_t>(buf.data(), n * kPage)));
    uint64_t t1 = now_us();
    stats.memdump_us += t1 - t0;
    for (uint64_t i = 0; i < n;) {
      if (zero_page(buf.data() + i * kPage)) {
        ++stats.pages_skipped_zero, ++i;
        continue;
      }
      uint64_t j = i + 1;
      while (j < n && !zero_page(buf.data() + j * kPage)) ++j;
      uint64_t at = addr + i * kPage;
      iovec iov[2] = {{&at, 8}, {buf.data() + i * kPage, size_t((j - i) * kPage)}};
      ENVRUN_CHECK(out.add_gather(type, id, std::span<const iovec>(iov, 2)));
      stats.pages_written += j - i;
      i = j;
    }
    stats.memwrite_us += now_us() - t1;
    done += n;
  }
  return ok();
}

Result<void> MemDumper::dump_process(pid_t host_pid, uint64_t image_pid, const std::vector<Vma>& vmas) {
  UniqueFd pagemap(::open(("/proc/" + std::to_string(host_pid) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap) return Error::sys("/proc/" + std::to_string(host_pid) + "/pagemap");
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
      ENVRUN_CHECK(dump_run(host_pid, SectionType::SharedMem, v.ino, v.start, pages));
      continue;
    }
    pm.resize(pages);
    ssize_t n = ::pread(pagemap.get(), pm.data(), pages * 8, off_t(v.start / kPage * 8));
    if (n != ssize_t(pages * 8)) return Error::sys("/proc/" + std::to_string(host_pid) + "/pagemap: read");
    for (uint64_t i = 0; i < pages;) {
      auto wanted = [&](uint64_t e) {
        if (e & kSwapped) return true;
        if (!(e & kPresent)) return false;
        return v.kind != Vma::Kind::File || !(e & kFilePage);
      };
      if (!wanted(pm[i])) {
        if ((pm[i] & kPresent) && v.kind == Vma::Kind::File) ++stats.pages_skipped_file;
        ++i;
        continue;
      }
      uint64_t j = i + 1;
      while (j < pages && wanted(pm[j])) ++j;
      stats.pages_scanned += j - i;
      ENVRUN_CHECK(dump_run(host_pid, SectionType::Pages, image_pid, v.start + i * kPage, j - i));
      i = j;
    }
  }
  return ok();
}

}  // namespace envrun::ckpt
