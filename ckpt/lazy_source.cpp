// DiskPageSource (lazy_source.hpp).
#include "ckpt/lazy_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "ckpt/crc32c.hpp"
#include "ckpt/image_format.hpp"

namespace envrun::ckpt {

namespace {
constexpr uint64_t kPage = 4096;
constexpr uint64_t kMaxSection = (64u << 20) + 8;  // what one read may take (the dump writes <= 1 MiB + 8)
}  // namespace

Result<uint32_t> DiskPageSource::add_file(const std::string& name) {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return uint32_t(i);
  UniqueFd fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::sys("lazy pages: " + name);
  files_.push_back(std::move(fd));
  names_.push_back(name);
  return uint32_t(files_.size() - 1);
}

void DiskPageSource::seal() {
  std::sort(locs_.begin(), locs_.end(), [](const PageLoc& a, const PageLoc& b) {
    return a.pid != b.pid ? a.pid < b.pid : a.start < b.start;
  });
  given_.assign(locs_.size(), false);
}

uint64_t DiskPageSource::pages() const {
  uint64_t n = 0;
  for (const auto& l : locs_) n += (l.end - l.start) / kPage;
  return n;
}

Result<void> DiskPageSource::request(uint64_t pid, uint64_t addr) {
  auto it = std::upper_bound(locs_.begin(), locs_.end(), std::make_pair(pid, addr),
                             [](const std::pair<uint64_t, uint64_t>& k, const PageLoc& l) {
                               return k.first != l.pid ? k.first < l.pid : k.second < l.start;
                             });
  if (it != locs_.begin()) {
    --it;
    if (it->pid == pid && addr >= it->start && addr < it->end) {
      asked_.push_back(size_t(it - locs_.begin()));
      return ok();
    }
  }
  char at[32];
  std::snprintf(at, sizeof at, "0x%llx", (unsigned long long)addr);
  return Error::make(ErrorKind::System, "lazy pages: no image holds the page of pid " + std::to_string(pid) + " at " + at);
}

Result<PageChunk> DiskPageSource::load(size_t i, bool fault) {
  const PageLoc& l = locs_[i];
  const std::string where = names_[l.file] + ": section " + std::to_string(l.index) + " (pages, id " +
                            std::to_string(l.pid) + ")";
  if (l.raw_size < 8 + kPage || l.raw_size > kMaxSection || (l.raw_size - 8) % kPage)
    return Error::make(ErrorKind::Config, where + ": " + std::to_string(l.raw_size) + " bytes: not a pages payload");
  if (remote_ && l.file == 0) ENVRUN_CHECK(remote_->ensure(l.payload_off, l.raw_size, fault));
  buf_.resize(l.raw_size);
  size_t got = 0;
  while (got < buf_.size()) {
    ssize_t n = ::pread(files_[l.file].get(), buf_.data() + got, buf_.size() - got, off_t(l.payload_off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys(where + ": read");
    if (n == 0) return Error::make(ErrorKind::Config, where + ": truncated");
    got += size_t(n);
  }
  if (uint32_t c = crc32c(buf_.data(), buf_.size()); c != l.crc)
    return Error::make(ErrorKind::Config, where + ": payload checksum mismatch (stored " + format::hex32(l.crc) +
                                              ", computed " + format::hex32(c) + ")");
  uint64_t addr;
  std::memcpy(&addr, buf_.data(), 8);
  if (addr != l.sec_addr || l.start < addr || l.end > addr + (l.raw_size - 8))
    return Error::make(ErrorKind::Config, where + ": holds other pages than when it was indexed");
  given_[i] = true;
  return PageChunk{l.pid, l.start, std::span<const uint8_t>(buf_.data() + 8 + (l.start - addr), l.end - l.start)};
}

Result<std::optional<PageChunk>> DiskPageSource::next() {
  if (!asked_.empty()) {
    size_t i = asked_.front();
    asked_.pop_front();
    return std::optional<PageChunk>(ENVRUN_TRY(load(i, true)));
  }
  while (cursor_ < locs_.size() && given_[cursor_]) ++cursor_;
  if (cursor_ >= locs_.size()) return std::optional<PageChunk>();
  if (remote_) ENVRUN_CHECK(ask_ahead());
  return std::optional<PageChunk>(ENVRUN_TRY(load(cursor_++, false)));
}

// Post-copy: the sections of the next locations asked for before they are needed, a few
// at a time (a fault's request waits behind at most these).
Result<void> DiskPageSource::ask_ahead() {
  constexpr size_t kAhead = 8, kLook = 64;
  for (size_t j = cursor_; j < locs_.size() && j < cursor_ + kLook && remote_->unanswered() < kAhead; ++j)
    if (!given_[j] && locs_[j].file == 0) ENVRUN_CHECK(remote_->ask(locs_[j].payload_off, locs_[j].raw_size));
  return ok();
}

std::vector<int> DiskPageSource::fds() const {
  std::vector<int> out;
  for (const auto& f : files_) out.push_back(f.get());
  if (remote_) out.push_back(remote_->fd());
  return out;
}

}  // namespace envrun::ckpt
