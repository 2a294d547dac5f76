// The PATH search of execvp/execlp/execvpe/posix_spawnp, done here because glibc's own
// search calls the kernel directly: each candidate <dir>/<file> goes through the rules, and
// the first that is an executable regular file wins (EACCES if only non-executable ones
// exist, as glibc). An empty PATH entry is the current directory.
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "intercept/hook.hpp"
#include "intercept/hook_exec.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt::exec {

namespace {

constexpr char kDefaultPath[] = "/bin:/usr/bin";  // glibc's when PATH is unset

// 0 when the candidate is an executable regular file, else -errno.
int usable(const char* candidate) {
  Resolved res;
  int rc = resolve(AT_FDCWD, candidate, Op::Exec, 0, res);
  if (rc < 0) return rc;
  struct stat st;
  rc = sys::fstatat(res.dirfd, res.path, &st, 0);
  if (rc < 0) return rc;
  if (!S_ISREG(st.st_mode)) return -EACCES;
  return int(sys::raw(SYS_faccessat2, res.dirfd, sys::L(res.path), X_OK, AT_EACCESS));
}

}  // namespace

int search_path(const char* file, char* out, size_t cap) {
  size_t flen = strlen(file);
  if (flen == 0) return ENOENT;
  if (flen > NAME_MAX) return ENAMETOOLONG;
  const char* path = getenv("PATH");
  if (path == nullptr) path = kDefaultPath;
  bool eacces = false;
  for (const char* p = path;; ++p) {
    const char* e = strchrnul(p, ':');
    size_t dlen = size_t(e - p);
    if (dlen + 1 + flen + 1 <= cap) {
      memcpy(out, p, dlen);
      size_t n = dlen;
      if (dlen > 0) out[n++] = '/';
      memcpy(out + n, file, flen + 1);
      int rc = usable(out);
      if (rc == 0) return 0;
      if (rc == -EACCES) eacces = true;
    }
    if (*e == '\0') break;
    p = e;
  }
  return eacces ? EACCES : ENOENT;
}

}  // namespace envrun::icpt::exec
