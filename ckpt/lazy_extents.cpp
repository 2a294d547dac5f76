// LazyExtents (lazy_extents.hpp).
#include "ckpt/lazy_extents.hpp"

#include <algorithm>

namespace envrun::ckpt {

void LazyExtents::cut(uint64_t at) {
  auto it = m_.upper_bound(at);
  if (it == m_.begin()) return;
  --it;
  if (it->first == at || it->second.end <= at) return;
  Extent tail{it->second.end, {it->second.src.pid, it->second.src.addr + (at - it->first)}};
  it->second.end = at;
  m_.emplace(at, tail);
}

void LazyExtents::add(uint64_t start, uint64_t end, Source src) {
  if (start >= end) return;
  remove(start, end);
  auto it = m_.emplace(start, Extent{end, src}).first;
  if (it != m_.begin()) {  // joins its predecessor when the sources run on
    auto prev = std::prev(it);
    if (prev->second.end == start && prev->second.src.pid == src.pid &&
        prev->second.src.addr + (start - prev->first) == src.addr) {
      prev->second.end = end;
      m_.erase(it);
    }
  }
}

std::optional<LazyExtents::Source> LazyExtents::source(uint64_t addr) const {
  auto it = m_.upper_bound(addr);
  if (it == m_.begin()) return std::nullopt;
  --it;
  if (addr >= it->second.end) return std::nullopt;
  return Source{it->second.src.pid, it->second.src.addr + (addr - it->first)};
}

void LazyExtents::remove(uint64_t start, uint64_t end) {
  if (start >= end) return;
  cut(start);
  cut(end);
  m_.erase(m_.lower_bound(start), m_.lower_bound(end));
}

void LazyExtents::remap(uint64_t from, uint64_t to, uint64_t len) {
  if (from == to || len == 0) return;
  cut(from);
  cut(from + len);
  std::vector<std::pair<uint64_t, Extent>> moved(m_.lower_bound(from), m_.lower_bound(from + len));
  m_.erase(m_.lower_bound(from), m_.lower_bound(from + len));
  remove(to, to + len);  // whatever the new place held is gone (MREMAP_FIXED)
  for (auto& [start, e] : moved) add(start - from + to, e.end - from + to, e.src);
}

std::vector<LazyExtents::Hit> LazyExtents::wanted(uint64_t src_pid, uint64_t src_addr, uint64_t len) const {
  std::vector<Hit> out;
  uint64_t src_end = src_addr + len;
  for (const auto& [start, e] : m_) {
    if (e.src.pid != src_pid) continue;
    uint64_t e_src_end = e.src.addr + (e.end - start);
    uint64_t lo = std::max(src_addr, e.src.addr), hi = std::min(src_end, e_src_end);
    if (lo >= hi) continue;
    out.push_back({start + (lo - e.src.addr), lo - src_addr, hi - lo});
  }
  std::sort(out.begin(), out.end(), [](const Hit& a, const Hit& b) { return a.src_off < b.src_off; });
  return out;
}

uint64_t LazyExtents::pages() const {
  uint64_t n = 0;
  for (const auto& [start, e] : m_) n += (e.end - start) / 4096;
  return n;
}

}  // namespace envrun::ckpt
