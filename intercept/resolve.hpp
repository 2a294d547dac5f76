// The path resolver of the `redirect` interceptor (semantics: intercept/README.md).
// Internal to libenvrun-intercept.so; no allocation, no locks, errno untouched on success.
#pragma once
#include <fcntl.h>
#include <limits.h>

#include <cstddef>

#include "intercept/db_format.h"

namespace envrun::icpt {

// What the call will do with the path; decides copy-up, EROFS, whiteouts, creation layer.
enum class Op : unsigned char {
  Stat,    // stat/lstat/statx/access/readlink/getxattr/realpath: look only
  Read,    // open read-only, opendir, chdir
  Write,   // open for writing (O_WRONLY/O_RDWR/O_TRUNC/O_APPEND), truncate: copy-up in writecopy
  Create,  // makes a new name: O_CREAT, mkdir, mknod, symlink/link/rename target, AF_UNIX bind
  Remove,  // unlink, rmdir, rename source: whiteout in writecopy
  Modify,  // chmod/chown/utimensat/setxattr/removexattr: copy-up in writecopy
  Exec,    // execve family, dlopen, posix_spawn
};

struct Resolved {
  const char* path = nullptr;          // hand this to the real call
  int dirfd = AT_FDCWD;                // with this dirfd (the caller's own when not redirected)
  const idb::FileRule* rule = nullptr; // the rule that matched, or nullptr
  bool redirected = false;             // path/dirfd differ from the caller's
  char buf[PATH_MAX];                  // storage behind `path` when redirected
};

// Resolve (dirfd, path) for `op`. at_flags: AT_SYMLINK_NOFOLLOW when the call does not
// follow a final symlink. Returns 0 (use out.path/out.dirfd) or -errno to fail the call
// without calling the kernel (hide: -ENOENT; readonly: -EROFS; -ELOOP; -ENAMETOOLONG).
// When the redirect interceptor is disabled or no DB is loaded, returns 0 with the
// caller's own dirfd and path.
int resolve(int dirfd, const char* path, Op op, int at_flags, Resolved& out);

// Map a real path (under a rule's outside or upper dir) back to the inside view.
// Writes a NUL-terminated inside path into out (cap bytes) and returns its length, or
// returns -1 when the path is under no rule (then out is untouched).
long to_inside(const char* real, char* out, size_t cap);

// Open-family fast path: open (dirfd, path, flags, mode) through the rules; returns the fd
// or -1 with errno set. Same semantics as resolve() + openat(), but uses openat2
// RESOLVE_BENEATH on the rule root when it can (one syscall).
int open_redirected(int dirfd, const char* path, int flags, unsigned mode);

}  // namespace envrun::icpt
