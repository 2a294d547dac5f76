// Inside paths of directory fds (fd_table.hpp). The paths live in one lazily mapped,
// never freed table (pages are touched only for the fds used); a byte per fd in bss says
// whether a slot holds anything, so forgetting an unknown fd is one load.
#include "intercept/fd_table.hpp"

#include <errno.h>
#include <sys/mman.h>

#include <atomic>

#include "intercept/lib_state.hpp"
#include "intercept/path_util.hpp"
#include "intercept/resolve.hpp"
#include "intercept/resolve_internal.hpp"
#include "intercept/seqbuf.hpp"
#include "intercept/sys.hpp"
#include "intercept/vfork_guard.hpp"

namespace envrun::icpt {

namespace {

enum : uint8_t { kEmpty = 0, kRuled = 1, kPlain = 2 };

constinit std::atomic<uint8_t> g_kind[kFdTableSlots];
constinit std::atomic<SeqPath*> g_table{nullptr};

SeqPath* table() {
  SeqPath* t = g_table.load(std::memory_order_acquire);
  if (t != nullptr) return t;
  void* p = mmap(nullptr, sizeof(SeqPath) * kFdTableSlots, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  SeqPath* expected = nullptr;
  if (!g_table.compare_exchange_strong(expected, static_cast<SeqPath*>(p), std::memory_order_acq_rel)) {
    munmap(p, sizeof(SeqPath) * kFdTableSlots);
    return expected;
  }
  return static_cast<SeqPath*>(p);
}

void put(int fd, const char* path, size_t len, uint8_t kind) {
  if (fd < 0 || fd >= kFdTableSlots || len >= PATH_MAX || !records_writable()) return;
  SeqPath* t = table();
  if (t == nullptr) return;
  g_kind[fd].store(kEmpty, std::memory_order_release);
  t[fd].write(path, len);
  g_kind[fd].store(kind, std::memory_order_release);
}

// /proc/self/fd/<fd>
void proc_fd_path(int fd, char* out) {
  static const char prefix[] = "/proc/self/fd/";
  memcpy(out, prefix, sizeof prefix - 1);
  char digits[12];
  int n = 0;
  unsigned v = unsigned(fd);
  do digits[n++] = char('0' + v % 10); while ((v /= 10) != 0);
  char* p = out + sizeof prefix - 1;
  while (n > 0) *p++ = digits[--n];
  *p = '\0';
}

}  // namespace

void fdt_set(int fd, const char* path, size_t len) { put(fd, path, len, kRuled); }

void fdt_forget(int fd) {
  if (fd >= 0 && fd < kFdTableSlots && g_kind[fd].load(std::memory_order_relaxed) != kEmpty &&
      records_writable())
    g_kind[fd].store(kEmpty, std::memory_order_release);
}

void fdt_dup(int oldfd, int newfd) {
  if (newfd < 0 || newfd >= kFdTableSlots || !records_writable()) return;
  uint8_t kind = oldfd >= 0 && oldfd < kFdTableSlots ? g_kind[oldfd].load(std::memory_order_acquire) : uint8_t(kEmpty);
  SeqPath* t = g_table.load(std::memory_order_acquire);
  char path[PATH_MAX];
  long n = kind != kEmpty && t != nullptr ? t[oldfd].read(path, sizeof path) : -1;
  if (n < 0) return fdt_forget(newfd);
  put(newfd, path, size_t(n), kind);
}

bool fdt_plain(int fd) {
  return fd >= 0 && fd < kFdTableSlots && g_kind[fd].load(std::memory_order_relaxed) == kPlain;
}

bool fdt_known(int fd) {
  return fd >= 0 && fd < kFdTableSlots && g_kind[fd].load(std::memory_order_relaxed) == kRuled;
}

void fdt_forget_range(unsigned first, unsigned last) {
  if (!records_writable()) return;
  for (unsigned fd = first; fd <= last && fd < unsigned(kFdTableSlots); ++fd) fdt_forget(int(fd));
}

long dirfd_inside(int fd, char* out, size_t cap, bool* plain) {
  if (fd >= 0 && fd < kFdTableSlots) {
    uint8_t kind = g_kind[fd].load(std::memory_order_acquire);
    SeqPath* t = g_table.load(std::memory_order_acquire);
    if (kind != kEmpty && t != nullptr) {
      long n = t[fd].read(out, cap);
      if (n >= 0 && g_kind[fd].load(std::memory_order_acquire) == kind) {
        *plain = kind == kPlain;
        return n;
      }
    }
  }
  char link[32];
  proc_fd_path(fd, link);
  char real[PATH_MAX];
  long n = sys::readlinkat(AT_FDCWD, link, real, sizeof real - 1);
  if (n <= 0) return n < 0 ? n : -EBADF;
  if (real[0] != '/' || size_t(n) >= sizeof real - 1) return -ENOTDIR;  // socket:[..], pipe:[..]
  real[n] = '\0';
  static const char deleted[] = " (deleted)";
  if (size_t(n) > sizeof deleted && strcmp(real + n - (sizeof deleted - 1), deleted) == 0) return -ENOENT;
  long k = to_inside(real, out, cap);
  if (k >= 0) {
    *plain = false;
    put(fd, out, size_t(k), kRuled);
    return k;
  }
  if (size_t(n) + 1 > cap) return -ENAMETOOLONG;
  memcpy(out, real, size_t(n) + 1);
  *plain = dir_plain(out, size_t(n));
  put(fd, out, size_t(n), *plain ? kPlain : kRuled);
  return n;
}

}  // namespace envrun::icpt
