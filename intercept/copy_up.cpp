// Writecopy copy-up: the lower object is copied into upper (parents first, with the lower
// directories' modes), content by copy_file_range (sendfile, then read/write as fallbacks),
// mode, owner (when root) and times kept. A regular file is written under a temporary
// `.wh.` name (hidden from listings) and linked into place, so that a concurrent copy-up
// of the same file by another process keeps the first complete copy.
#include <errno.h>

#include <atomic>

#include "intercept/resolve_internal.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

namespace {

constinit std::atomic<unsigned> g_copy_seq{0};

int copy_content(int src, int dst) {
  bool cfr = true, sf = true;
  for (;;) {
    long n = -EINVAL;
    if (cfr) {
      n = sys::copy_file_range(src, dst, size_t(1) << 30);
      if (n < 0) cfr = false;
    }
    if (!cfr && sf) {
      n = sys::sendfile(dst, src, size_t(1) << 30);
      if (n < 0) sf = false;
    }
    if (!cfr && !sf) {
      char buf[16384];
      n = sys::read(src, buf, sizeof buf);
      for (long off = 0; n > 0 && off < n;) {
        long k = sys::write(dst, buf + off, size_t(n - off));
        if (k == -EINTR) continue;
        if (k < 0) return int(k);
        off += k;
      }
    }
    if (n == 0) return 0;
    if (n == -EINTR) continue;
    if (n < 0 && !cfr && !sf) return int(n);
  }
}

// tmp = "<dir of upper>/.wh..cu.<tid>.<seq>"
long temp_name(const char* upper, char* tmp, size_t cap) {
  size_t n = strlen(upper);
  size_t slash = n;
  while (slash > 0 && upper[slash - 1] != '/') --slash;
  char tail[48] = ".wh..cu.";
  size_t k = strlen(tail);
  unsigned vals[2] = {unsigned(sys::gettid()), g_copy_seq.fetch_add(1, std::memory_order_relaxed)};
  for (unsigned v : vals) {
    char d[12];
    int m = 0;
    do d[m++] = char('0' + v % 10); while ((v /= 10) != 0);
    while (m > 0) tail[k++] = d[--m];
    tail[k++] = '.';
  }
  tail[--k] = '\0';
  return concat(tmp, cap, upper, slash, tail, k);
}

int copy_regular(const char* lower, const char* upper, const struct stat& st, bool empty) {
  char tmp[PATH_MAX];
  long tn = temp_name(upper, tmp, sizeof tmp);
  if (tn < 0) return int(tn);
  int src = -1;
  if (!empty) {
    src = sys::openat(AT_FDCWD, lower, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (src < 0) return src;
  }
  int dst = sys::openat(AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (dst < 0) {
    if (src >= 0) sys::close(src);
    return dst;
  }
  int rc = empty ? 0 : copy_content(src, dst);
  if (src >= 0) sys::close(src);
  if (rc == 0) {
    if (sys::getuid() == 0) sys::fchownat(dst, "", st.st_uid, st.st_gid, AT_EMPTY_PATH);
    rc = sys::fchmod(dst, st.st_mode & 07777);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (!empty) sys::utimensat(dst, nullptr, ts, 0);
  }
  sys::close(dst);
  if (rc == 0) {
    rc = sys::linkat(AT_FDCWD, tmp, AT_FDCWD, upper, 0);
    if (rc == -EEXIST) rc = 0;  // copied up by someone else meanwhile: theirs stands
  }
  sys::unlinkat(AT_FDCWD, tmp, 0);
  return rc;
}

int copy_object(const char* lower, const char* upper, bool empty) {
  struct stat st;
  int rc = sys::fstatat(AT_FDCWD, lower, &st, AT_SYMLINK_NOFOLLOW);
  if (rc < 0) return rc;
  if (S_ISREG(st.st_mode)) return copy_regular(lower, upper, st, empty);
  if (S_ISDIR(st.st_mode)) {
    rc = sys::mkdirat(AT_FDCWD, upper, st.st_mode & 07777);
  } else if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    long n = sys::readlinkat(AT_FDCWD, lower, target, sizeof target - 1);
    if (n < 0) return int(n);
    target[n] = '\0';
    rc = sys::symlinkat(target, AT_FDCWD, upper);
  } else {
    rc = sys::mknodat(AT_FDCWD, upper, st.st_mode, st.st_rdev);
  }
  if (rc == -EEXIST) return 0;
  if (rc == 0 && sys::getuid() == 0) sys::fchownat(AT_FDCWD, upper, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
  return rc;
}

}  // namespace

int copy_up(const idb::FileRule& r, Walk& w, size_t depth, bool empty, Resolved& out) {
  // A final symlink the call follows: copy up its target instead (resolved as inside path).
  if (w.follow_last()) {
    struct stat st;
    if (sys::fstatat(AT_FDCWD, out.buf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      long n = sys::readlinkat(AT_FDCWD, out.buf, target, sizeof target - 1);
      if (n > 0) {
        target[n] = '\0';
        size_t rlen = w.rest_len(r);
        size_t cs = rlen;
        while (cs > 0 && w.rest(r)[cs - 1] != '/') --cs;
        return follow_link(r, w, cs, rlen, target, size_t(n));
      }
    }
  }
  char lower[PATH_MAX];
  memcpy(lower, out.buf, strlen(out.buf) + 1);
  int rc = make_upper_parents(r, w, depth);
  if (rc < 0) return rc;
  rc = layer_path(r, Layer::Upper, w, out);
  if (rc < 0) return rc;
  return copy_object(lower, out.buf, empty);
}

}  // namespace envrun::icpt
