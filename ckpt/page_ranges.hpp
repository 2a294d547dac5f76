// Sets of page-aligned address ranges [start, end): what incremental checkpoints pass
// around (pages written since the parent, pages to take from the parent, ...). A
// PageRanges value is "normal" when sorted, without empty, overlapping or touching
// ranges; every function here returns normal sets and accepts any input.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "kernel/result.hpp"

namespace envrun::ckpt {

struct PageRange {
  uint64_t start = 0, end = 0;
  uint64_t bytes() const { return end - start; }
  bool operator==(const PageRange&) const = default;
};
using PageRanges = std::vector<PageRange>;

inline constexpr uint64_t kPageBytes = 4096;

PageRanges normalized(PageRanges r);
PageRanges intersect(const PageRanges& a, const PageRanges& b);
PageRanges subtract(const PageRanges& a, const PageRanges& b);
uint64_t page_count(const PageRanges& r);

// The image encoding (parent-pages sections, envrun-image(5)): per range two
// little-endian u64, start address and page count.
std::vector<uint8_t> encode_ranges(const PageRanges& r);
// Refuses a payload that is not whole pairs, unaligned addresses, empty or wrapping
// ranges; `what` names the section in the message.
Result<PageRanges> decode_ranges(std::span<const uint8_t> bytes, const std::string& what);

}  // namespace envrun::ckpt
