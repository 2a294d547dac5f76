// Reading and writing the live option slots of the control page (control.h, OptionOverride).
// Header-only, libc only: the library reads, runtime/ writes.
#pragma once
#include <cstring>

#include "intercept/control.h"

namespace envrun::ictl {

// Copy the live value of (interceptor, key) into out (cap bytes, NUL-terminated) and return
// true, or return false when no slot holds one.
inline bool read_option_override(const ControlPage* page, uint32_t interceptor, const char* key, char* out,
                                 size_t cap) {
  if (page == nullptr || cap == 0) return false;
  for (uint32_t i = 0; i < kMaxOptionOverrides; ++i) {
    const OptionOverride& o = page->options[i];
    for (int attempt = 0; attempt < 100; ++attempt) {
      uint32_t s1 = o.seq.load(std::memory_order_acquire);
      if (s1 & 1u) continue;  // being written
      bool match = o.used && o.interceptor == interceptor && std::strncmp(o.key, key, sizeof o.key) == 0;
      if (match) {
        size_t n = strnlen(o.value, sizeof o.value);
        if (n >= cap) n = cap - 1;
        std::memcpy(out, o.value, n);
        out[n] = '\0';
      }
      std::atomic_thread_fence(std::memory_order_acquire);
      if (o.seq.load(std::memory_order_relaxed) != s1) continue;  // changed meanwhile: read again
      if (match) return true;
      break;
    }
  }
  return false;
}

// Store (interceptor, key) = value in its slot, or a free one. False when key or value is too
// long or all slots are taken. One writer at a time (envrun); readers never block it.
inline bool write_option_override(ControlPage* page, uint32_t interceptor, const char* key, const char* value) {
  if (std::strlen(key) >= sizeof(OptionOverride::key) || std::strlen(value) >= sizeof(OptionOverride::value))
    return false;
  OptionOverride* slot = nullptr;
  for (uint32_t i = 0; i < kMaxOptionOverrides && slot == nullptr; ++i) {
    OptionOverride& o = page->options[i];
    if (o.used && o.interceptor == interceptor && std::strncmp(o.key, key, sizeof o.key) == 0) slot = &o;
  }
  for (uint32_t i = 0; i < kMaxOptionOverrides && slot == nullptr; ++i)
    if (!page->options[i].used) slot = &page->options[i];
  if (slot == nullptr) return false;
  slot->seq.fetch_add(1, std::memory_order_acq_rel);  // odd: readers retry
  std::atomic_thread_fence(std::memory_order_release);
  slot->interceptor = uint16_t(interceptor);
  std::memset(slot->key, 0, sizeof slot->key);
  std::memset(slot->value, 0, sizeof slot->value);
  std::memcpy(slot->key, key, std::strlen(key));
  std::memcpy(slot->value, value, std::strlen(value));
  slot->used = 1;
  slot->seq.fetch_add(1, std::memory_order_release);  // even: consistent again
  return true;
}

}  // namespace envrun::ictl
