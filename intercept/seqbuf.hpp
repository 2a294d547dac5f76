// A path buffer written rarely and read by any thread without a lock (a sequence lock:
// readers copy and retry when a writer ran meanwhile). Internal to libenvrun-intercept.so.
#pragma once
#include <limits.h>
#include <string.h>

#include <atomic>
#include <cstdint>

namespace envrun::icpt {

struct SeqPath {
  std::atomic<uint32_t> seq{0};
  std::atomic<uint32_t> len{0};
  char s[PATH_MAX] = {};

  // One writer at a time (callers serialize with `busy` when needed).
  void write(const char* p, size_t n) {
    seq.fetch_add(1, std::memory_order_acq_rel);  // odd: being written
    std::atomic_thread_fence(std::memory_order_release);
    memcpy(s, p, n);
    s[n] = '\0';
    len.store(uint32_t(n), std::memory_order_relaxed);
    seq.fetch_add(1, std::memory_order_release);
  }
  // Copy into out (cap bytes); returns the length, or -1 when it does not fit.
  long read(char* out, size_t cap) const {
    for (;;) {
      uint32_t a = seq.load(std::memory_order_acquire);
      if (a & 1u) continue;
      size_t n = len.load(std::memory_order_relaxed);
      if (n + 1 > cap || n >= PATH_MAX) {
        if (seq.load(std::memory_order_acquire) == a) return -1;
        continue;
      }
      memcpy(out, s, n);
      out[n] = '\0';
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq.load(std::memory_order_relaxed) == a) return long(n);
    }
  }
};

}  // namespace envrun::icpt
