// PageRanges (page_ranges.hpp).
#include "ckpt/page_ranges.hpp"

#include <algorithm>
#include <string>

namespace envrun::ckpt {

PageRanges normalized(PageRanges r) {
  std::erase_if(r, [](const PageRange& x) { return x.end <= x.start; });
  std::sort(r.begin(), r.end(), [](const PageRange& a, const PageRange& b) { return a.start < b.start; });
  PageRanges out;
  for (const auto& x : r) {
    if (!out.empty() && x.start <= out.back().end) out.back().end = std::max(out.back().end, x.end);
    else out.push_back(x);
  }
  return out;
}

PageRanges intersect(const PageRanges& a0, const PageRanges& b0) {
  PageRanges a = normalized(a0), b = normalized(b0), out;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    uint64_t s = std::max(a[i].start, b[j].start), e = std::min(a[i].end, b[j].end);
    if (s < e) out.push_back({s, e});
    if (a[i].end < b[j].end) ++i;
    else ++j;
  }
  return out;
}

PageRanges subtract(const PageRanges& a0, const PageRanges& b0) {
  PageRanges a = normalized(a0), b = normalized(b0), out;
  size_t j = 0;
  for (const auto& x : a) {
    uint64_t at = x.start;
    while (j < b.size() && b[j].end <= at) ++j;
    for (size_t k = j; k < b.size() && b[k].start < x.end; ++k) {
      if (b[k].start > at) out.push_back({at, b[k].start});
      at = std::max(at, b[k].end);
    }
    if (at < x.end) out.push_back({at, x.end});
  }
  return out;
}

uint64_t page_count(const PageRanges& r) {
  uint64_t n = 0;
  for (const auto& x : r) n += (x.end - x.start) / kPageBytes;
  return n;
}

namespace {

void put64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::vector<uint8_t> encode_ranges(const PageRanges& r) {
  std::vector<uint8_t> out;
  out.reserve(r.size() * 16);
  for (const auto& x : r) {
    put64(out, x.start);
    put64(out, (x.end - x.start) / kPageBytes);
  }
  return out;
}

Result<PageRanges> decode_ranges(std::span<const uint8_t> bytes, const std::string& what) {
  if (bytes.size() % 16)
    return Error::make(ErrorKind::Config, what + ": " + std::to_string(bytes.size()) + " bytes, not whole (address, pages) pairs");
  PageRanges out;
  for (size_t at = 0; at < bytes.size(); at += 16) {
    uint64_t start = get64(bytes.data() + at), pages = get64(bytes.data() + at + 8);
    bool bad = start % kPageBytes || pages == 0 || pages > (UINT64_MAX - start) / kPageBytes;
    if (bad)
      return Error::make(ErrorKind::Config, what + ": range " + std::to_string(at / 16) + " (address " +
                                                std::to_string(start) + ", " + std::to_string(pages) +
                                                " pages) is unaligned, empty or wraps");
    out.push_back({start, start + pages * kPageBytes});
  }
  return normalized(std::move(out));
}

}  // namespace envrun::ckpt
