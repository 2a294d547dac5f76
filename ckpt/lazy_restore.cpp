// LazyRestore (lazy_restore.hpp).
#include "ckpt/lazy_restore.hpp"

#include <unistd.h>

#include <cstring>
#include <map>

#include "kernel/log.hpp"

namespace envrun::ckpt {

namespace {
constexpr uint64_t kPage = 4096;
}

Result<LazyRestore> LazyRestore::open(const Plan& plan, const std::string& image, int fd, int fetch_fd) {
  LazyRestore l(plan, fd);
  l.own_file_ = ENVRUN_TRY(l.src_->add_file(image));
  if (fetch_fd >= 0) {
    l.remote_ = std::make_shared<RemoteFill>(UniqueFd(fetch_fd));
    l.src_->set_remote(l.remote_);
  }
  return l;
}

Result<bool> LazyRestore::take(const UffdPages& uffd, const ProcPlan& pp, uint32_t file, const SectionHeader& h,
                               uint64_t sec_addr, uint64_t start, uint64_t end) {
  if (h.compressed() || !pp.host_pid || !uffd.registered(pp.host_pid, start, end)) return false;
  PageLoc l;
  l.pid = pp.core.pid;
  l.file = file;
  l.payload_off = h.offset + kSectionHeaderSize;
  l.raw_size = h.raw_size;
  l.crc = h.crc;
  l.index = h.index;
  l.sec_addr = sec_addr;
  l.start = start, l.end = end;
  src_->add(l);
  pages_ += (end - start) / kPage;
  return true;
}

DeferPages LazyRestore::own(const UffdPages& uffd) {
  return [this, &uffd](const SectionHeader& h, ImageReader& in) -> Result<bool> {
    if (h.compressed() || h.raw_size < 8 + kPage || (h.raw_size - 8) % kPage) return false;
    size_t i = plan_->index_of(pid_t(h.id));
    if (i == std::string::npos) return false;  // write_memory names the error
    uint64_t addr;
    if (::pread(fd_, &addr, 8, off_t(h.offset + kSectionHeaderSize)) != 8) return Error::sys("restore: lazy pages: read");
    bool taken = ENVRUN_TRY(take(uffd, plan_->procs[i], own_file_, h, addr, addr, addr + (h.raw_size - 8)));
    if (taken) ENVRUN_CHECK(in.seek_payload());
    if (!taken && remote_) {  // written now: its pages fetched first
      ENVRUN_CHECK(remote_->ensure(h.offset + kSectionHeaderSize, h.raw_size));
      in.drop_read_ahead();
    }
    return taken;
  };
}

ParentChain::DeferPages LazyRestore::parents(const UffdPages& uffd) {
  // The same parent's name comes for each of its thousands of ranges: its file id is kept.
  return [this, &uffd, last = std::string(), last_file = uint32_t(0)](
             const ProcPlan& pp, const PageRange& r, const std::string& image, const SectionHeader& h,
             uint64_t sec_addr) mutable -> Result<bool> {
    if (last.empty() || image != last) last_file = ENVRUN_TRY(src_->add_file(image)), last = image;
    uint32_t file = last_file;
    bool taken = ENVRUN_TRY(take(uffd, pp, file, h, sec_addr, r.start, r.end));
    if (taken) parent_pages_ += r.bytes() / kPage;
    return taken;
  };
}

Result<LazyServerHandle> LazyRestore::start(UffdPages& uffd, pid_t root) {
  src_->seal();
  std::map<pid_t, const ProcPlan*> by_host;
  for (const auto& pp : plan_->procs) by_host[pp.host_pid] = &pp;
  LazyServerSetup s;
  s.root = root;
  for (auto& [pid, fd] : ENVRUN_TRY(uffd.release())) {
    LazyTarget t;
    t.host_pid = pid;
    t.image_pid = uint64_t(by_host.at(pid)->core.pid);
    t.uffd = std::move(fd);
    s.targets.push_back(std::move(t));
  }
  // What each wants: the pages its locations hold.
  std::map<uint64_t, LazyTarget*> by_image;
  for (auto& t : s.targets) by_image[t.image_pid] = &t;
  for (const auto& l : src_->locations()) {
    auto it = by_image.find(l.pid);
    if (it != by_image.end()) it->second->want.add(l.start, l.end, {l.pid, l.start});
  }
  log::debug("restore: lazy pages: " + std::to_string(pages_) + " pages (" + std::to_string(parent_pages_) +
             " of parent images) left to the page server for " + std::to_string(s.targets.size()) + " processes");
  s.source = std::move(src_);
  auto h = ENVRUN_TRY(start_lazy_server(std::move(s)));
  log::debug("restore: lazy pages: page server pid " + std::to_string(h.pid));
  return h;
}

}  // namespace envrun::ckpt
