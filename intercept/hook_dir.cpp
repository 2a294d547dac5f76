// Directory listing hooks: opendir/fdopendir/readdir(64)/rewinddir/closedir, scandir(at)
// (+64: glibc's own scandir reads with internal calls, so it is rebuilt here on the hooked
// ones), getdents64. Union listings of merge/writecopy directories: dir_union.cpp.
#include <dirent.h>
#include <stdlib.h>

#include "intercept/resolve_internal.hpp"
#include "intercept/hide_index.hpp"
#include "intercept/dir_union.hpp"
#include "intercept/fd_table.hpp"
#include "intercept/hook.hpp"

using namespace envrun::icpt;

namespace {

// opendir of a resolved path: the DIR, with the inside path and the union listing attached.
DIR* open_resolved(const Resolved& out) {
  DIR* d;
  if (out.dirfd == AT_FDCWD || out.path[0] == '/') {
    d = REAL(opendir)(out.path);
  } else {  // relative to a caller's dirfd that no rule concerns
    int fd = REAL(openat)(out.dirfd, out.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = fd < 0 ? nullptr : REAL(fdopendir)(fd);
    if (fd >= 0 && d == nullptr) REAL(close)(fd);
  }
  if (d == nullptr) return nullptr;
  char inside[PATH_MAX];
  long n = out.rule != nullptr ? result_inside(out, inside, sizeof inside) : -1;
  if (n >= 0) fdt_set(::dirfd(d), inside, size_t(n));
  else fdt_forget(::dirfd(d));
  union_attach(d, out);
  return d;
}

struct OpendirSteps : NoSteps {
  Resolved out;
  bool redirect(Call& c) {
    int rc = resolve(c.dirfd, c.path, Op::Read, 0, out);
    return rc < 0 ? refuse(c, rc) : true;
  }
  void real(Call& c) {
    c.ext = open_resolved(out);
    if (c.ext == nullptr) c.failed = true, c.err = errno;
  }
};

// The chain's entry for opendir and scandir (readdir/getdents act on the DIR/fd it made).
DIR* open_dir(int dirfd, const char* path) {
  ensure_init();
  if (!redirect_on()) return dirfd == AT_FDCWD ? REAL(opendir)(path) : nullptr;
  Call c;
  c.op = Op::Read;
  c.dirfd = dirfd;
  c.path = path;
  OpendirSteps h;
  h.out.dirfd = dirfd;  // what the real step opens should redirect not run
  h.out.path = path;
  run_chain(c, plan_for(CallClass::Path, live_mask()), h);
  if (c.failed) return fail_with<DIR*>(-c.err, nullptr);
  return static_cast<DIR*>(c.ext);
}

template <class Ent>
using Select = int (*)(const Ent*);
template <class Ent>
using Compare = int (*)(const Ent**, const Ent**);

// scandir on our own opendir/readdir: the union and the rules apply to the listing.
template <class Ent, class Next>
int scan(int dirfd, const char* path, Ent*** list, Select<Ent> sel, Compare<Ent> cmp, Next next) {
  DIR* d = open_dir(dirfd, path);
  if (d == nullptr) return -1;
  Ent** v = nullptr;
  size_t n = 0, cap = 0;
  int err = 0;
  while (Ent* e = next(d)) {
    if (sel != nullptr && sel(e) == 0) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      auto** nv = static_cast<Ent**>(realloc(v, cap * sizeof *v));
      if (nv == nullptr) {
        err = ENOMEM;
        break;
      }
      v = nv;
    }
    auto* copy = static_cast<Ent*>(malloc(e->d_reclen));
    if (copy == nullptr) {
      err = ENOMEM;
      break;
    }
    memcpy(copy, e, e->d_reclen);
    v[n++] = copy;
  }
  closedir(d);
  if (err != 0) {
    while (n > 0) free(v[--n]);
    free(v);
    errno = err;
    return -1;
  }
  if (cmp != nullptr && n > 1)
    qsort(v, n, sizeof *v, reinterpret_cast<int (*)(const void*, const void*)>(cmp));
  *list = v;
  return int(n);
}

// True when the listing needs no rule (then glibc's own scandir does it).
// glibc's scandir reads the directory with its internal opendir/readdir, which no hook
// sees: only a directory under no rule and with no hidden child may go there.
bool plain_listing(int dirfd, const char* path) {
  ensure_init();
  if (!redirect_on()) return true;
  Resolved out;
  if (resolve(dirfd, path, Op::Stat, 0, out) != 0 || out.redirected) return false;
  if (!any_hide_rules()) return true;
  InsidePath in;
  bool base_real = false;
  if (inside_of(dirfd, path, in, &base_real) != 0) return true;  // no rule involved, or let the call report
  HiddenRange hidden;
  return !hidden_children(in.s, in.n, &hidden);
}

}  // namespace

HOOK DIR* opendir(const char* path) { return open_dir(AT_FDCWD, path); }

HOOK DIR* fdopendir(int fd) {
  ensure_init();
  DIR* d = REAL(fdopendir)(fd);
  if (d != nullptr && redirect_on()) union_attach_fd(d, fd);
  return d;
}

HOOK struct dirent* readdir(DIR* d) { return union_readdir(d); }
HOOK struct dirent64* readdir64(DIR* d) { return union_readdir64(d); }

HOOK void rewinddir(DIR* d) {
  REAL(rewinddir)(d);
  union_rewind(d);
}

HOOK int closedir(DIR* d) {
  union_close(d);
  return REAL(closedir)(d);
}

HOOK ssize_t getdents64(int fd, void* buf, size_t n) noexcept {
  ensure_init();
  if (!redirect_on()) return REAL(getdents64)(fd, buf, n);
  return union_getdents64(fd, buf, n);
}

HOOK int scandir(const char* path, struct dirent*** list, Select<struct dirent> sel, Compare<struct dirent> cmp) {
  if (plain_listing(AT_FDCWD, path)) return REAL(scandir)(path, list, sel, cmp);
  return scan<struct dirent>(AT_FDCWD, path, list, sel, cmp, [](DIR* d) { return union_readdir(d); });
}

HOOK int scandir64(const char* path, struct dirent64*** list, Select<struct dirent64> sel,
                   Compare<struct dirent64> cmp) {
  if (plain_listing(AT_FDCWD, path)) return REAL(scandir64)(path, list, sel, cmp);
  return scan<struct dirent64>(AT_FDCWD, path, list, sel, cmp, [](DIR* d) { return union_readdir64(d); });
}

HOOK int scandirat(int dirfd, const char* path, struct dirent*** list, Select<struct dirent> sel,
                   Compare<struct dirent> cmp) {
  if (plain_listing(dirfd, path)) return REAL(scandirat)(dirfd, path, list, sel, cmp);
  return scan<struct dirent>(dirfd, path, list, sel, cmp, [](DIR* d) { return union_readdir(d); });
}

HOOK int scandirat64(int dirfd, const char* path, struct dirent64*** list, Select<struct dirent64> sel,
                     Compare<struct dirent64> cmp) {
  if (plain_listing(dirfd, path)) return REAL(scandirat64)(dirfd, path, list, sel, cmp);
  return scan<struct dirent64>(dirfd, path, list, sel, cmp, [](DIR* d) { return union_readdir64(d); });
}
