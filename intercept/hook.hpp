// What every hook file includes: the export macro, the library state, the resolver.
// Hooks are the only exported symbols of libenvrun-intercept.so (-fvisibility=hidden).
// Globals of the library must be `constinit`: the constructor (and hooks called by other
// libraries' constructors) run before dynamic initializers, which would reset them.
#pragma once
#include <errno.h>
#include <sys/stat.h>

#include "intercept/fast_path.hpp"
#include "intercept/path_chain.hpp"
#include "intercept/lib_state.hpp"
#include "intercept/resolve.hpp"

#define HOOK extern "C" __attribute__((visibility("default")))

namespace envrun::icpt {

// Fail a hooked call with the errno a rule (or the resolver) decided: returns `ret`.
template <class T>
inline T fail_with(int neg_errno, T ret) {
  errno = -neg_errno;
  return ret;
}

// The errno of a call we issued for ourselves must not leak to the application.
struct ErrnoKeeper {
  int saved = errno;
  ~ErrnoKeeper() { errno = saved; }
};

}  // namespace envrun::icpt

// glibc < 2.33 entry points (binaries built against older glibc call these for stat).
extern "C" {
int __xstat(int ver, const char* path, struct stat* st);
int __lxstat(int ver, const char* path, struct stat* st);
int __fxstatat(int ver, int dirfd, const char* path, struct stat* st, int flags);
int __xstat64(int ver, const char* path, struct stat64* st);
int __lxstat64(int ver, const char* path, struct stat64* st);
int __fxstatat64(int ver, int dirfd, const char* path, struct stat64* st, int flags);
}

// REALV(__xstat): like REAL, for compat-only (versioned) glibc symbols.
#define REALV(fn)                                                                      \
  ([]() {                                                                              \
    static decltype(&::fn) p_ = nullptr;                                               \
    if (__builtin_expect(p_ == nullptr, 0))                                            \
      p_ = reinterpret_cast<decltype(&::fn)>(::envrun::icpt::real_versioned_symbol(#fn)); \
    return p_;                                                                         \
  }())
