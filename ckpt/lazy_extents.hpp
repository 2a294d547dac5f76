// Lazy restore (--lazy-pages): which pages of one restored address space are still to
// come from the page source, and where each comes from: the image pid and the address
// the page had when it was dumped. A forked child's pages come from its parent's image
// pid; a range the process moved with mremap(2) keeps its old source address.
//
// The page server keeps one LazyExtents per userfaultfd and updates it from the
// kernel's events: a page copied in, a range unmapped or zapped (MADV_DONTNEED: it
// then reads zero, the image's bytes must not come back), a range moved.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace envrun::ckpt {

class LazyExtents {
 public:
  struct Source {
    uint64_t pid = 0;   // image pid whose dumped pages these are
    uint64_t addr = 0;  // the page's address at the dump
  };
  struct Hit {
    uint64_t addr = 0;     // current address in this address space
    uint64_t src_off = 0;  // offset into the source range asked about
    uint64_t bytes = 0;
  };

  // [start, end) (page-aligned) is to come from src.pid's pages at src.addr onwards.
  void add(uint64_t start, uint64_t end, Source src);
  // Where the page at addr comes from; nullopt when none is to come (a page the image
  // does not hold, one already in, or one dropped since).
  std::optional<Source> source(uint64_t addr) const;
  // [start, end) no longer wants anything (copied in, unmapped, zapped).
  void remove(uint64_t start, uint64_t end);
  // mremap: what was wanted in [from, from + len) is now wanted at [to, to + len).
  void remap(uint64_t from, uint64_t to, uint64_t len);
  // The parts of source range [src_addr, src_addr + len) of src_pid this space still
  // wants, by current address.
  std::vector<Hit> wanted(uint64_t src_pid, uint64_t src_addr, uint64_t len) const;
  bool empty() const { return m_.empty(); }
  uint64_t pages() const;

 private:
  struct Extent {
    uint64_t end;
    Source src;
  };
  std::map<uint64_t, Extent> m_;  // start -> extent; disjoint
  void cut(uint64_t at);          // split the extent holding `at` so that one starts there
};

}  // namespace envrun::ckpt
