// Layer root fds and their protection (layer_fds.hpp).
#include "intercept/layer_fds.hpp"

#include <errno.h>

#include <atomic>
#include <cstdint>

#include "intercept/lib_state.hpp"
#include "intercept/lower_absent.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

namespace {

// fd + 1 of each rule's layers (0: not open). Indexed by the rule's position in the DB.
constinit std::atomic<int> g_roots[2][idb::kMaxFileRules];

constexpr int kMaxProtected = 1 << 16;
constinit std::atomic<uint64_t> g_prot_bits[kMaxProtected / 64];
constinit std::atomic<int> g_prot_low{INT32_MAX};  // lowest protected fd (a fast no for most closes)
constinit std::atomic<int> g_prot_high{-1};

void protect(int fd, bool yes) {
  if (fd < 0 || fd >= kMaxProtected) return;
  uint64_t bit = uint64_t(1) << (fd & 63);
  if (yes) {
    g_prot_bits[fd >> 6].fetch_or(bit, std::memory_order_acq_rel);
    int low = g_prot_low.load(std::memory_order_relaxed);
    while (fd < low && !g_prot_low.compare_exchange_weak(low, fd)) {
    }
    int high = g_prot_high.load(std::memory_order_relaxed);
    while (fd > high && !g_prot_high.compare_exchange_weak(high, fd)) {
    }
  } else {
    g_prot_bits[fd >> 6].fetch_and(~bit, std::memory_order_acq_rel);
  }
}

std::atomic<int>& slot(const idb::FileRule& r, Layer layer) {
  size_t i = size_t(&r - g_state.db.files());
  return g_roots[layer == Layer::Upper ? 1 : 0][i];
}

}  // namespace

int layer_root_fd(const idb::FileRule& r, Layer layer) {
  std::atomic<int>& s = slot(r, layer);
  int v = s.load(std::memory_order_acquire);
  if (__builtin_expect(v > 0, 1)) return v - 1;
  idb::Str dir = layer == Layer::Upper ? r.upper : r.outside;
  if (dir.len == 0) return -ENOENT;
  int fd = sys::openat(AT_FDCWD, g_state.db.str(dir), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fd;
  int high = sys::fcntl(fd, F_DUPFD_CLOEXEC, kProtectedFloor);
  if (high >= 0) {
    sys::close(fd);
    fd = high;
  }
  protect(fd, true);
  int expected = 0;
  if (!s.compare_exchange_strong(expected, fd + 1, std::memory_order_acq_rel)) {
    protect(fd, false);  // another thread won
    sys::close(fd);
    return expected - 1;
  }
  return fd;
}

void layer_root_reset(const idb::FileRule& r, Layer layer) {
  int v = slot(r, layer).exchange(0, std::memory_order_acq_rel);
  lower_absent_reset();  // what was known of the layers' directories may no longer hold
  if (v > 0) {
    protect(v - 1, false);
    sys::close(v - 1);
  }
}

void layer_roots_revalidate() {
  for (int l = 0; l < 2; ++l)
    for (uint32_t i = 0; i < g_state.db.file_count(); ++i) {
      int v = g_roots[l][i].load(std::memory_order_acquire);
      if (v <= 0) continue;
      const idb::FileRule& r = g_state.db.files()[i];
      struct stat held, now;
      if (sys::fstat(v - 1, &held) == 0 &&
          sys::fstatat(AT_FDCWD, g_state.db.str(l == 1 ? r.upper : r.outside), &now, 0) == 0 &&
          held.st_dev == now.st_dev && held.st_ino == now.st_ino)
        continue;
      layer_root_reset(r, l == 1 ? Layer::Upper : Layer::Outside);
    }
}

bool fd_protected(int fd) {
  if (fd < g_prot_low.load(std::memory_order_relaxed) || fd >= kMaxProtected) return false;
  return (g_prot_bits[fd >> 6].load(std::memory_order_acquire) >> (fd & 63)) & 1u;
}

int next_protected(unsigned fd) {
  int high = g_prot_high.load(std::memory_order_acquire);
  int low = g_prot_low.load(std::memory_order_acquire);
  for (long f = fd < unsigned(low) ? low : long(fd); f <= high; ++f)
    if (fd_protected(int(f))) return int(f);
  return -1;
}

void move_protected(int fd) {
  if (!fd_protected(fd)) return;
  int moved = sys::fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
  if (moved < 0) return;
  for (auto& layer : g_roots)
    for (uint32_t i = 0; i < g_state.db.file_count(); ++i) {
      int want = fd + 1;
      if (layer[i].compare_exchange_strong(want, moved + 1, std::memory_order_acq_rel)) {
        protect(moved, true);
        protect(fd, false);
        return;  // the application's dup2 closes the old number
      }
    }
  sys::close(moved);
}

}  // namespace envrun::icpt
