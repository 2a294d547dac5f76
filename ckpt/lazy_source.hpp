// Lazy restore (--lazy-pages): where the page server gets the pages it puts into the
// restored processes. A source hands out chunks of dumped pages (an image pid, an
// address, the bytes): the ones a fault asked for first, then every other one, each
// once, until it has given out everything (done()).
//
// DiskPageSource: the image's own pages sections (and the parent images' for an
// incremental chain) on local disk, found by LazyIndex at restore time. A section is
// read whole (at most 1 MiB: the dump cuts sections at its 1 MiB slots) and its crc32c
// checked before any of its pages is given out; a damaged or unreadable section is an
// error, on which the server kills the tree (never a zero page in place of a lost one).
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ckpt/image.hpp"
#include "ckpt/lazy_remote.hpp"
#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt {

struct PageChunk {
  uint64_t pid = 0;   // image pid
  uint64_t addr = 0;  // address of data[0] at the dump
  std::span<const uint8_t> data;  // whole pages; valid until the next call to next()
};

class LazyPageSource {
 public:
  virtual ~LazyPageSource() = default;
  // An fd to poll for chunks that arrive on their own (the network), or -1.
  virtual int poll_fd() const { return -1; }
  // A fault wants the page of image pid `pid` at `addr`: give it out next.
  virtual Result<void> request(uint64_t pid, uint64_t addr) = 0;
  // The next chunk: asked-for ones first, then the rest; nullopt when none is ready
  // now (poll poll_fd()) or none is left (done()).
  virtual Result<std::optional<PageChunk>> next() = 0;
  // Every chunk was given out (requests may still come: a copy the kernel refused for
  // a moment is asked for again).
  virtual bool done() const = 0;
  // Every page is in the processes (the server closes its userfaultfds next).
  virtual void finished() {}
  // The fds the source needs kept open in the page server process.
  virtual std::vector<int> fds() const = 0;
};

// Where one run of dumped pages is in an image file.
struct PageLoc {
  uint64_t pid = 0;           // image pid
  uint32_t file = 0;          // index into the source's files
  uint64_t payload_off = 0;   // the section's payload (8-byte address, then pages) in the file
  uint64_t raw_size = 0;      // payload bytes
  uint32_t crc = 0;           // of the payload
  uint32_t index = 0;         // the section's index in its image, for messages
  uint64_t sec_addr = 0;      // address of the section's first page
  uint64_t start = 0, end = 0;  // the pages of the section to give out (a parent's: only those needed)
};

class DiskPageSource final : public LazyPageSource {
 public:
  // The image file `name` (again, by path: the page server reads with pread), or one
  // already open: returns its index for PageLoc::file.
  Result<uint32_t> add_file(const std::string& name);
  void add(const PageLoc& loc) { locs_.push_back(loc); }
  // Sorts the locations (before the first request).
  void seal();
  size_t size() const { return locs_.size(); }
  const std::vector<PageLoc>& locations() const { return locs_; }
  uint64_t pages() const;
  // Post-copy (lazy_remote.hpp): file 0 is sparse; a section is fetched before it is read.
  void set_remote(std::shared_ptr<RemoteFill> r) { remote_ = std::move(r); }

  Result<void> request(uint64_t pid, uint64_t addr) override;
  Result<std::optional<PageChunk>> next() override;
  bool done() const override { return asked_.empty() && cursor_ >= locs_.size(); }
  std::vector<int> fds() const override;

 private:
  Result<PageChunk> load(size_t i, bool fault);
  std::vector<UniqueFd> files_;
  std::vector<std::string> names_;
  std::vector<PageLoc> locs_;
  std::vector<bool> given_;
  std::deque<size_t> asked_;
  size_t cursor_ = 0;
  std::vector<uint8_t> buf_;
  std::shared_ptr<RemoteFill> remote_;
  Result<void> ask_ahead();
};

}  // namespace envrun::ckpt
