// Monotonic microseconds for the engine's statistics.
#pragma once
#include <chrono>
#include <cstdint>

namespace envrun::ckpt {

inline uint64_t now_us() {
  return uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now().time_since_epoch()).count());
}

}  // namespace envrun::ckpt
