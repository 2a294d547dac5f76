// UffdPages and write_memory (restore_pages.hpp).
#include "ckpt/restore_pages.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ckpt/incremental_restore.hpp"
#include "ckpt/infect/infect.hpp"
#include "ckpt/restore_mm.hpp"
#include "ckpt/slot_pipeline.hpp"
#include "kernel/log.hpp"
#include "kernel/process.hpp"

namespace envrun::ckpt {

namespace {

constexpr uint64_t kPage = 4096;
constexpr size_t kSlotBytes = 1u << 20;
constexpr size_t kSlots = 4;

}  // namespace

Result<UffdPages::Proc> UffdPages::open_one(const ProcPlan& pp, ProcessRebuild& rb, bool lazy) {
  auto refused = [&](const std::string& what, int e) {
    return Error::sys("restore: pid " + std::to_string(pp.core.pid) + ": userfaultfd: " + what, e);
  };
  Proc p;
  p.pid = pp.host_pid;
  p.rebuild = &rb;
  // User-mode-only needs no privilege; a kernel older than 5.11 refuses the flag.
  // Lazy: kernel-mode faults too (the process's own syscalls, other processes' reads).
  long fd = lazy ? ENVRUN_TRY(rb.remote_syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK))
                 : ENVRUN_TRY(rb.remote_syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
  if (fd == -EINVAL && !lazy) fd = ENVRUN_TRY(rb.remote_syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd < 0) return refused("create", int(-fd));
  p.remote_fd = fd;
  auto pidfd = proc::pidfd_open(p.pid);
  if (pidfd) p.uffd.reset(int(::syscall(SYS_pidfd_getfd, pidfd->get(), int(fd), 0)));
  if (!p.uffd) {
    int e = pidfd ? errno : pidfd.error().sys_errno;
    (void)rb.remote_syscall(SYS_close, uint64_t(fd));
    return refused("pidfd_getfd", e);
  }
  uffdio_api api{};
  api.api = UFFD_API;
  if (lazy)
    api.features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
  if (::ioctl(p.uffd.get(), UFFDIO_API, &api) != 0) {
    int e = errno;
    p.uffd.reset();
    (void)rb.remote_syscall(SYS_close, uint64_t(fd));
    return refused("UFFDIO_API", e);
  }
  for (const auto& v : pp.core.vmas) {
    if (v.kind != Vma::Kind::Anon || v.shared) continue;
    uffdio_register reg{};
    reg.range = {v.start, v.size()};
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(p.uffd.get(), UFFDIO_REGISTER, &reg) == 0) p.ranges.push_back({v.start, v.end});
  }
  std::sort(p.ranges.begin(), p.ranges.end(), [](const Range& a, const Range& b) { return a.start < b.start; });
  return p;
}

UffdPages UffdPages::open(const Plan& plan, const std::vector<std::unique_ptr<ProcessRebuild>>& rebuilds) {
  return open_all(plan, rebuilds, false);
}

UffdPages UffdPages::open_lazy(const Plan& plan, const std::vector<std::unique_ptr<ProcessRebuild>>& rebuilds) {
  return open_all(plan, rebuilds, true);
}

bool UffdPages::registered(pid_t pid, uint64_t start, uint64_t end) const {
  for (const auto& p : procs_)
    if (p.pid == pid)
      for (const auto& r : p.ranges)
        if (start >= r.start && end <= r.end) return true;
  return false;
}

Result<std::vector<std::pair<pid_t, UniqueFd>>> UffdPages::release() {
  std::vector<std::pair<pid_t, UniqueFd>> out;
  for (auto& p : procs_) {
    long r = ENVRUN_TRY(p.rebuild->remote_syscall(SYS_close, uint64_t(p.remote_fd)));
    if (r < 0) return Error::sys("restore: pid " + std::to_string(p.pid) + ": close its userfaultfd", int(-r));
    out.emplace_back(p.pid, std::move(p.uffd));
  }
  procs_.clear();
  return out;
}

UffdPages UffdPages::open_all(const Plan& plan, const std::vector<std::unique_ptr<ProcessRebuild>>& rebuilds, bool lazy) {
  UffdPages u;
  size_t k = 0;
  for (const auto& pp : plan.procs) {
    if (pp.core.zombie) continue;
    if (k >= rebuilds.size()) break;
    auto p = open_one(pp, *rebuilds[k++], lazy);
    if (!p) {  // infect::write_mem for this process
      log::debug(p.error().message + " (its pages go through process_vm_writev)");
      continue;
    }
    log::debug("restore: pid " + std::to_string(pp.core.pid) + ": userfaultfd with " +
               std::to_string(p->ranges.size()) + " anonymous mappings registered");
    u.procs_.push_back(std::move(*p));
  }
  return u;
}

Result<void> UffdPages::close() {
  Result<void> first = ok();
  for (auto& p : procs_) {
    p.uffd.reset();
    auto r = p.rebuild->remote_syscall(SYS_close, uint64_t(p.remote_fd));
    if (first && !r) first = std::move(r).error();
  }
  procs_.clear();
  return first;
}

// UFFDIO_COPY over the whole range; a page already there (EEXIST) is written through
// memory (it is present, so nothing faults) and the copy goes on after it.
Result<void> UffdPages::copy(const Proc& p, uint64_t addr, std::span<const uint8_t> data) const {
  size_t done = 0;
  while (done < data.size()) {
    uffdio_copy c{};
    c.dst = addr + done;
    c.src = reinterpret_cast<uint64_t>(data.data() + done);
    c.len = data.size() - done;
    c.mode = UFFDIO_COPY_MODE_DONTWAKE;  // nothing waits: the process is stopped
    int rc = ::ioctl(p.uffd.get(), UFFDIO_COPY, &c);
    if (c.copy > 0) done += size_t(c.copy);
    if (rc == 0) continue;
    if (errno == EAGAIN || errno == EINTR) continue;
    if (errno != EEXIST)
      return Error::sys("restore: pid " + std::to_string(p.pid) + ": UFFDIO_COPY at " + std::to_string(c.dst));
    ENVRUN_CHECK(infect::write_mem(p.pid, addr + done, data.subspan(done, kPage)));
    done += kPage;
  }
  return ok();
}

Result<void> UffdPages::write(pid_t pid, uint64_t addr, std::span<const uint8_t> data) const {
  for (const auto& p : procs_) {
    if (p.pid != pid) continue;
    for (const auto& r : p.ranges)
      if (addr >= r.start && addr + data.size() <= r.end && data.size() % kPage == 0) return copy(p, addr, data);
    break;
  }
  return infect::write_mem(pid, addr, data);
}

namespace {

// One part of a memory section, read into `buf`, to go to a process or a memfd.
struct PagePart {
  struct BufFree {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t[], BufFree> buf;
  size_t len = 0;
  pid_t pid = 0;    // Pages: the host pid
  int shm_fd = -1;  // SharedMem: the memfd
  uint64_t at = 0;  // the address, or the memfd offset
};

PagePart make_part() {
  PagePart p;
  p.buf.reset(static_cast<uint8_t*>(std::aligned_alloc(kPage, kSlotBytes)));
  return p;
}

// Where a shared-mem section's address lands in its memfd.
Result<uint64_t> shm_offset(const Plan& plan, uint64_t ino, uint64_t addr) {
  for (const auto& pp : plan.procs)
    for (const auto& v : pp.core.vmas)
      if (v.kind == Vma::Kind::SharedAnon && v.ino == ino && addr >= v.start && addr < v.end)
        return v.offset + (addr - v.start);
  return Error::make(ErrorKind::Config, "image: shared memory " + std::to_string(ino) + " at an address no mapping has");
}

Result<void> put_part(const UffdPages& uffd, const PagePart& p) {
  std::span<const uint8_t> data(p.buf.get(), p.len);
  if (p.shm_fd < 0) return uffd.write(p.pid, p.at, data);
  if (::pwrite(p.shm_fd, data.data(), data.size(), off_t(p.at)) != ssize_t(data.size()))
    return Error::sys("restore: shared memory");
  return ok();
}

// The destination of a memory section's first page: a process or a memfd.
Result<PagePart> destination(const SectionHeader& h, uint64_t addr, const Plan& plan) {
  PagePart d;
  d.at = addr;
  if (h.section_type() == SectionType::SharedMem) {
    d.at = ENVRUN_TRY(shm_offset(plan, h.id, addr));
    d.shm_fd = plan.shm_fds.at(h.id).get();
    return d;
  }
  size_t i = plan.index_of(pid_t(h.id));
  if (i == std::string::npos || !plan.procs[i].host_pid)
    return Error::make(ErrorKind::Config, "image: pages of unknown pid " + std::to_string(h.id));
  d.pid = plan.procs[i].host_pid;
  return d;
}

// One section's pages into parts: read straight into the parts (plain), or whole then
// copied into them (zstd).
Result<void> feed_section(ImageReader& in, const SectionHeader& h, const Plan& plan, SlotPipeline<PagePart>& pipe) {
  std::vector<uint8_t> whole;
  uint64_t addr;
  if (h.compressed()) {
    whole.resize(h.raw_size);
    ENVRUN_CHECK(in.read_payload(whole));
    std::memcpy(&addr, whole.data(), 8);
  } else {
    ENVRUN_CHECK(in.read_payload_part(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&addr), 8)));
  }
  PagePart dest = ENVRUN_TRY(destination(h, addr, plan));
  for (uint64_t off = 0, size = h.raw_size - 8; off < size;) {
    PagePart* p = ENVRUN_TRY(pipe.acquire());
    if (!p->buf) return pipe.release(p), Error::make(ErrorKind::System, "restore: cannot allocate a 1 MiB page buffer");
    p->len = size_t(std::min<uint64_t>(kSlotBytes, size - off));
    p->pid = dest.pid, p->shm_fd = dest.shm_fd, p->at = dest.at + off;
    auto got = h.compressed() ? (std::memcpy(p->buf.get(), whole.data() + 8 + off, p->len), Result<void>(ok()))
                              : in.read_payload_part(std::span<uint8_t>(p->buf.get(), p->len));
    if (!got) return pipe.release(p), std::move(got).error();
    pipe.submit(p);
    off += p->len;
  }
  return ok();
}

}  // namespace

Result<uint64_t> write_memory(ImageReader& in, std::optional<SectionHeader> h, const Plan& plan, ParentChain& chain,
                              const UffdPages& uffd, const DeferPages& defer) {
  SlotPipeline<PagePart> pipe(kSlots, make_part, [&uffd](PagePart& p) { return put_part(uffd, p); });
  uint64_t pages = 0;
  for (; h; h = ENVRUN_TRY(in.next())) {
    auto type = h->section_type();
    if (type == SectionType::ParentPages) {  // incremental: pages the parent images hold
      ENVRUN_CHECK(chain.add_needed(*h, in));
      continue;
    }
    if (type != SectionType::Pages && type != SectionType::SharedMem) continue;  // read by next(): skipped
    if (type == SectionType::Pages && defer && ENVRUN_TRY(defer(*h, in))) continue;
    if (h->raw_size < 8 || (h->raw_size - 8) % kPage)
      return Error::make(ErrorKind::Config, "image: section " + std::to_string(h->index) + ": not whole pages");
    ENVRUN_CHECK(feed_section(in, *h, plan, pipe));
    pages += (h->raw_size - 8) / kPage;
  }
  ENVRUN_CHECK(pipe.finish());
  return pages;
}

}  // namespace envrun::ckpt
