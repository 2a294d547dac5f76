// AF_UNIX socket paths through the redirect rules: bind creates the name where the rule
// puts new files, connect/sendto find it where the rule reads from. A mapped path longer
// than sun_path (108 bytes) is reached through its directory: the directory is opened
// (O_PATH) and the name given as /proc/self/fd/<dirfd>/<name>, which the kernel resolves to
// the same inode; getsockname then reports the name the application asked for.
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "intercept/hook_net.hpp"
#include "intercept/lib_state.hpp"
#include "intercept/resolved_path.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt::net {

namespace {

constexpr size_t kPathOff = offsetof(sockaddr_un, sun_path);
constexpr size_t kSunPath = sizeof(sockaddr_un::sun_path);

// The NUL-terminated path of a non-abstract AF_UNIX address, or false.
bool unix_path_of(const sockaddr* sa, socklen_t len, char (&out)[kSunPath + 1]) {
  if (sa == nullptr || len <= socklen_t(kPathOff) || sa->sa_family != AF_UNIX) return false;
  const char* p = reinterpret_cast<const sockaddr_un*>(sa)->sun_path;
  size_t n = size_t(len) - kPathOff;
  if (n > kSunPath) n = kSunPath;
  if (n == 0 || p[0] == '\0') return false;  // autobind or abstract: not a path
  size_t k = strnlen(p, n);
  memcpy(out, p, k);
  out[k] = '\0';
  return true;
}

void set_path(UnixTarget& t, const char* path, size_t n) {
  memset(&t.sa, 0, sizeof t.sa);
  t.sa.sun_family = AF_UNIX;
  memcpy(t.sa.sun_path, path, n);
  t.len = socklen_t(kPathOff + n + 1);
}

// The real path is too long for sun_path: hold its directory open and name it through proc.
int via_proc_fd(char* real, size_t n, UnixTarget& t) {
  char* slash = strrchr(real, '/');
  if (slash == nullptr || slash[1] == '\0') return -ENAMETOOLONG;
  const char* base = slash + 1;
  if (slash == real) {
    t.tmp_dirfd = sys::openat(AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  } else {
    *slash = '\0';
    t.tmp_dirfd = sys::openat(AT_FDCWD, real, O_PATH | O_DIRECTORY | O_CLOEXEC);
    *slash = '/';
  }
  if (t.tmp_dirfd < 0) {
    int e = t.tmp_dirfd;
    t.tmp_dirfd = -1;
    return e;
  }
  char name[kSunPath + 32] = "/proc/self/fd/";
  size_t k = strlen(name);
  k += format_uint(unsigned(t.tmp_dirfd), name + k);
  size_t blen = real + n - base;
  if (k + 1 + blen + 1 > kSunPath) return -ENAMETOOLONG;
  name[k++] = '/';
  memcpy(name + k, base, blen + 1);
  set_path(t, name, k + blen);
  t.via_proc = true;
  return 1;
}

}  // namespace

UnixTarget::~UnixTarget() {
  if (tmp_dirfd >= 0) sys::close(tmp_dirfd);
}

int map_unix_path(const sockaddr* sa, socklen_t len, Op op, UnixTarget& out) {
  char path[kSunPath + 1];
  if (!unix_path_of(sa, len, path)) return 0;
  Resolved res;
  int rc = resolve(AT_FDCWD, path, op, 0, res);
  if (rc < 0) return rc;
  if (!res.redirected) return 0;
  char real[PATH_MAX];
  long n = resolved_path_string(res, real, sizeof real);
  if (n < 0) return int(n);
  if (size_t(n) < kSunPath) {
    set_path(out, real, size_t(n));
    return 1;
  }
  return via_proc_fd(real, size_t(n), out);
}

void unix_to_inside(sockaddr* sa, socklen_t cap, socklen_t* len) {
  if (!g_state.db_ok || g_state.db.file_count() == 0) return;
  char real[kSunPath + 1];
  if (*len > cap || !unix_path_of(sa, *len, real)) return;  // truncated by the kernel: leave it
  char inside[PATH_MAX];
  long n = to_inside(real, inside, sizeof inside);
  if (n < 0) return;
  size_t room = cap - kPathOff;
  char* dst = reinterpret_cast<sockaddr_un*>(sa)->sun_path;
  memcpy(dst, inside, size_t(n) + 1 <= room ? size_t(n) + 1 : room);
  *len = socklen_t(kPathOff + size_t(n) + 1);
}

void report_address(int fd, sockaddr* sa, socklen_t cap, socklen_t* len) {
  if (sa == nullptr || len == nullptr || *len < socklen_t(sizeof(sa_family_t)) || *len > cap) return;
  if (sa->sa_family == AF_UNIX) {
    unix_to_inside(sa, cap, len);
  } else if ((sa->sa_family == AF_INET || sa->sa_family == AF_INET6) && rules_active()) {
    map_to_inside(fd, sa, *len);
  }
}

}  // namespace envrun::icpt::net
