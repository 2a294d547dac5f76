// Union directory listings (dir_union.hpp).
#include "intercept/dir_union.hpp"

#include <errno.h>
#include <string.h>

#include <atomic>

#include "intercept/fd_table.hpp"
#include "intercept/hide_index.hpp"
#include "intercept/resolve_internal.hpp"
#include "intercept/sys.hpp"
#include "intercept/vfork_guard.hpp"

namespace envrun::icpt {

namespace {

constexpr int kSlots = 128;

struct Union {
  std::atomic<int> fd_plus1{0};  // primary fd + 1; 0 free, -1 being filled
  DIR* second = nullptr;         // the second layer, for readdir
  int second_fd = -1;            // the second layer, for getdents64 (raw fds)
  bool whiteouts = false;        // writecopy: hide `.wh.*` and whited-out names
  bool second_phase = false;     // the primary is exhausted
  bool hides = false;            // some entries are hidden by rules (`hide`)
  HiddenRange hidden;            // where to find those rules
};

constinit Union g_unions[kSlots];
constinit std::atomic<int> g_active{0};

Union* find(int fd) {
  if (fd < 0 || g_active.load(std::memory_order_acquire) == 0) return nullptr;
  for (auto& u : g_unions)
    if (u.fd_plus1.load(std::memory_order_acquire) == fd + 1) return &u;
  return nullptr;
}

void release(Union& u) {
  if (!records_writable()) return;  // a vfork child: the union is the parent's
  if (u.second != nullptr) REAL(closedir)(u.second);
  if (u.second_fd >= 0) sys::close(u.second_fd);
  u.second = nullptr;
  u.second_fd = -1;
  u.fd_plus1.store(0, std::memory_order_release);
  g_active.fetch_sub(1, std::memory_order_acq_rel);
}

bool is_dot(const char* n) { return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')); }
bool is_wh(const char* n) { return strncmp(n, kWhiteoutPrefix, sizeof kWhiteoutPrefix - 1) == 0; }

// An entry of the primary layer is listed unless it is a whiteout or a hidden name.
bool primary_shows(const Union& u, const char* name) {
  return !(u.whiteouts && is_wh(name)) && !(u.hides && hidden_name(u.hidden, name));
}

// An entry of the second layer is listed when the primary has no such name and no whiteout.
bool second_shows(const Union& u, int primary, const char* name) {
  if (is_dot(name) || !primary_shows(u, name)) return false;
  if (sys::exists_nofollow(primary, name) == 0) return false;
  if (!u.whiteouts) return true;
  char wh[NAME_MAX + sizeof kWhiteoutPrefix];
  size_t k = strlen(name);
  if (k > NAME_MAX) return true;
  memcpy(wh, kWhiteoutPrefix, sizeof kWhiteoutPrefix - 1);
  memcpy(wh + sizeof kWhiteoutPrefix - 1, name, k + 1);
  return sys::exists_nofollow(primary, wh) != 0;
}

// The second layer of a resolved directory: its path into `second`; *whiteouts for
// writecopy. False when the listing needs no union.
bool second_layer(const Resolved& out, char* second, size_t cap, bool* whiteouts, bool* has_second) {
  const idb::FileRule* r = out.rule;
  if (r == nullptr) return false;
  auto mode = idb::FileMode(r->mode);
  *has_second = false;
  if (mode == idb::FileMode::Merge) {
    if (out.where != Where::Outside) return false;
    *whiteouts = false;
    if (result_inside(out, second, cap) < 0) return false;
  } else if (mode == idb::FileMode::WriteCopy) {
    if (out.where != Where::Upper) return false;
    *whiteouts = true;
    char marker[PATH_MAX];
    if (concat(marker, sizeof marker, out.buf, strlen(out.buf), "/", 1, kOpaqueMarker, sizeof kOpaqueMarker - 1) < 0 ||
        sys::exists_nofollow(AT_FDCWD, marker) == 0)
      return true;  // opaque: upper alone, filtered
    const char* rest = out.buf + out.rest_off;
    if (r->outside.len > 0) {
      size_t dlen;
      const char* dir = layer_dir(*r, Layer::Outside, &dlen);
      if (concat(second, cap, dir, dlen, rest, strlen(rest)) < 0) return true;
    } else if (result_inside(out, second, cap) < 0) {
      return true;
    }
  } else {
    return false;
  }
  struct stat st;
  *has_second = sys::fstatat(AT_FDCWD, second, &st, 0) == 0 && S_ISDIR(st.st_mode);
  return true;
}

Union* claim(int fd) {
  for (auto& u : g_unions) {
    int expected = 0;
    if (u.fd_plus1.compare_exchange_strong(expected, -1, std::memory_order_acq_rel)) {
      g_active.fetch_add(1, std::memory_order_acq_rel);
      u.second = nullptr;
      u.second_fd = -1;
      u.second_phase = false;
      (void)fd;
      return &u;
    }
  }
  return nullptr;  // table full: this listing shows the primary layer only
}

// Start the union (second layer of a merge/writecopy directory, when out is one) and/or
// the filter of hidden names (when the directory `inside`, n bytes, has hidden children).
void attach(int fd, DIR* d, const Resolved* out, const char* inside, size_t n) {
  if (!records_writable()) return;
  char second[PATH_MAX];
  bool whiteouts = false, has_second = false;
  bool layered = out != nullptr && second_layer(*out, second, sizeof second, &whiteouts, &has_second);
  HiddenRange hidden;
  bool hides = inside != nullptr && hidden_children(inside, n, &hidden);
  if (!layered && !hides) return;
  if (Union* old = find(fd)) release(*old);
  Union* u = claim(fd);
  if (u == nullptr) return;
  u->whiteouts = whiteouts;
  u->hides = hides;
  u->hidden = hidden;
  if (has_second) {
    if (d != nullptr) u->second = REAL(opendir)(second);
    else u->second_fd = sys::openat(AT_FDCWD, second, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  u->fd_plus1.store(fd + 1, std::memory_order_release);
}

// The Resolved of what fd refers to, when it is a redirected directory of a union rule.
bool resolve_fd(int fd, Resolved& out) {
  char inside[PATH_MAX];
  bool plain = true;
  long n = dirfd_inside(fd, inside, sizeof inside, &plain);
  if (n < 0 || plain) return false;
  if (resolve(AT_FDCWD, inside, Op::Read, 0, out) != 0 || out.rule == nullptr) return false;
  auto mode = idb::FileMode(out.rule->mode);
  if (mode != idb::FileMode::Merge && mode != idb::FileMode::WriteCopy) return false;
  struct stat a, b;  // fd must be the directory the resolver chose as primary
  return sys::fstat(fd, &a) == 0 && sys::fstatat(AT_FDCWD, out.path, &b, 0) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

// attach() for an fd the library may know nothing about: its inside path from the fd
// table (or /proc), the union when it is a redirected merge/writecopy directory.
void attach_fd(int fd, DIR* d) {
  bool hides = any_hide_rules() && !fdt_plain(fd);
  Resolved out;
  bool layered = fdt_known(fd) && resolve_fd(fd, out);
  if (!layered && !hides) return;
  char inside[PATH_MAX];
  bool plain = true;
  long n = hides ? dirfd_inside(fd, inside, sizeof inside, &plain) : -1;
  attach(fd, d, layered ? &out : nullptr, n > 0 && !plain ? inside : nullptr, n > 0 ? size_t(n) : 0);
}

template <class Ent, class Real>
Ent* next_entry(DIR* d, Real real) {
  if (g_active.load(std::memory_order_acquire) == 0) return real(d);
  int fd = dirfd(d);
  Union* u = find(fd);
  if (u == nullptr) return real(d);
  if (!u->second_phase) {
    for (;;) {
      int saved = errno;
      Ent* e = real(d);
      if (e == nullptr) {
        if (errno != saved) return nullptr;  // a read error, not the end
        break;
      }
      if (!primary_shows(*u, e->d_name)) continue;
      return e;
    }
    u->second_phase = true;
  }
  if (u->second == nullptr) return nullptr;
  for (;;) {
    Ent* e = real(u->second);
    if (e == nullptr || second_shows(*u, fd, e->d_name)) return e;
  }
}

// Keep the entries of buf[0..n) that pass `keep`; returns the new length.
template <class Keep>
long compact(char* buf, long n, Keep keep) {
  long out = 0;
  for (long off = 0; off < n;) {
    auto* d = reinterpret_cast<struct dirent64*>(buf + off);
    unsigned short len = d->d_reclen;
    if (keep(d->d_name)) {
      if (out != off) memmove(buf + out, buf + off, len);
      out += len;
    }
    off += len;
  }
  return out;
}

}  // namespace

void union_attach(DIR* d, const Resolved& out) {
  if (d == nullptr) return;
  char inside[PATH_MAX];
  long n = -1;
  if (out.rule != nullptr) {
    n = result_inside(out, inside, sizeof inside);
  } else if (any_hide_rules()) {  // a directory under no rule may still have hidden children
    InsidePath in;
    bool base_real = false;
    if (out.redirected && out.path == out.buf) {
      n = long(strlen(out.buf));
      if (n > 1 && out.buf[n - 1] == '/') --n;
      if (n < long(sizeof inside)) memcpy(inside, out.buf, size_t(n));
      else n = -1;
    } else if (inside_of(out.dirfd, out.path, in, &base_real) == 0 && in.n < sizeof inside) {
      memcpy(inside, in.s, in.n);
      n = long(in.n);
    }
  } else {
    return;
  }
  attach(dirfd(d), d, out.rule != nullptr ? &out : nullptr, n > 0 ? inside : nullptr, n > 0 ? size_t(n) : 0);
}

void union_attach_fd(DIR* d, int fd) {
  if (d != nullptr) attach_fd(fd, d);
}

struct dirent* union_readdir(DIR* d) {
  return next_entry<struct dirent>(d, [](DIR* x) { return REAL(readdir)(x); });
}

struct dirent64* union_readdir64(DIR* d) {
  return next_entry<struct dirent64>(d, [](DIR* x) { return REAL(readdir64)(x); });
}

void union_rewind(DIR* d) {
  if (Union* u = find(dirfd(d))) {
    u->second_phase = false;
    if (u->second != nullptr) REAL(rewinddir)(u->second);
  }
}

void union_close(DIR* d) {
  int fd = dirfd(d);
  if (Union* u = find(fd)) release(*u);
  fdt_forget(fd);
}

long union_getdents64(int fd, void* vbuf, size_t n) {
  char* buf = static_cast<char*>(vbuf);
  Union* u = find(fd);
  if (u == nullptr) {
    attach_fd(fd, nullptr);
    u = find(fd);
  }
  for (;;) {
    int src = u == nullptr || !u->second_phase ? fd : u->second_fd;
    if (src < 0) return 0;
    long got = sys::getdents64(src, buf, n);
    if (got < 0) {
      errno = int(-got);
      return -1;
    }
    if (u == nullptr) return got;
    if (got == 0) {
      if (u->second_phase || u->second_fd < 0) return 0;  // no second layer: stay on the primary
      u->second_phase = true;
      continue;
    }
    long kept = u->second_phase ? compact(buf, got, [u, fd](const char* name) { return second_shows(*u, fd, name); })
                : compact(buf, got, [u](const char* name) { return primary_shows(*u, name); });
    if (kept > 0) return kept;
  }
}

void union_forget_fd(int fd) {
  if (Union* u = find(fd)) release(*u);
}

void union_forget_range(unsigned first, unsigned last) {
  if (g_active.load(std::memory_order_acquire) == 0) return;
  for (auto& u : g_unions) {
    int v = u.fd_plus1.load(std::memory_order_acquire);
    if (v > 0 && unsigned(v - 1) >= first && unsigned(v - 1) <= last) release(u);
  }
}

}  // namespace envrun::icpt
