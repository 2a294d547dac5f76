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
  Replace, // rename target: the name will be replaced (writecopy: goes to upper, no copy)
};

// Where a resolved path lies.
enum class Where : unsigned char { Host = 0, Outside = 1, Upper = 2 };

struct Resolved {
  const char* path = nullptr;          // hand this to the real call
  int dirfd = AT_FDCWD;                // with this dirfd (the caller's own when not redirected)
  const idb::FileRule* rule = nullptr; // the rule that matched, or nullptr
  bool redirected = false;             // path/dirfd differ from the caller's
  Where where = Where::Host;           // the layer `path` is in (when rule != nullptr)
  bool over_whiteout = false;          // writecopy Create over a whiteout (mkdir: make it opaque)
  unsigned short rest_off = 0;         // buf + rest_off: the part below the rule's directory
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

// resolve() for an open with these flags (O_CREAT without O_EXCL: writecopy copies an
// existing lower file up, O_TRUNC skips the copy of its content; O_NOFOLLOW; O_TMPFILE).
int resolve_open(int dirfd, const char* path, int flags, Resolved& out);

// The inside path of a redirected result (out.rule != nullptr) into buf (cap bytes);
// returns its length or -ENAMETOOLONG.
long result_inside(const Resolved& r, char* buf, size_t cap);

// unlink/rmdir (at_flags AT_REMOVEDIR) and rename through the rules: writecopy leaves
// whiteouts for lower names and copies a renamed lower file up first. 0 or -1 with errno.
int remove_redirected(int dirfd, const char* path, int at_flags);
int rename_redirected(int olddirfd, const char* oldpath, int newdirfd, const char* newpath, unsigned flags);

}  // namespace envrun::icpt
