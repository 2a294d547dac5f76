// Directories lower does not have (lower_absent.hpp).
#include "intercept/lower_absent.hpp"

#include <atomic>
#include <cstdint>

#include "intercept/lib_state.hpp"

namespace envrun::icpt {

namespace {

constexpr unsigned kSlots = 256;
constinit std::atomic<uint64_t> g_slots[kSlots];
constinit std::atomic<uint64_t> g_generation{1};

uint64_t key(const idb::FileRule& r, const char* rest, size_t n) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t(&r - g_state.db.files()) * 0x9E3779B97F4A7C15ull);
  for (size_t i = 0; i < n; ++i) h = (h ^ uint8_t(rest[i])) * 1099511628211ull;
  h ^= (uint64_t(n) << 40) ^ g_generation.load(std::memory_order_relaxed) * 0xC2B2AE3D27D4EB4Full;
  h ^= h >> 33;  // spread the bits that pick the slot
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  return h | 1;  // 0 marks a free slot
}

}  // namespace

bool lower_absent_known(const idb::FileRule& r, const char* rest, size_t n) {
  uint64_t k = key(r, rest, n);
  return g_slots[k % kSlots].load(std::memory_order_relaxed) == k;
}

void lower_absent_note(const idb::FileRule& r, const char* rest, size_t n) {
  uint64_t k = key(r, rest, n);
  g_slots[k % kSlots].store(k, std::memory_order_relaxed);
}

void lower_absent_reset() { g_generation.fetch_add(1, std::memory_order_relaxed); }

}  // namespace envrun::icpt
