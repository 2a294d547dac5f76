// copy_tree: a walk with openat/fstatat below fds (no path is followed through a symlink).
#include "agent/tree_copy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "kernel/fd.hpp"

namespace envrun::agent {

namespace {

struct Walk {
  dev_t root_dev = 0;
  std::map<std::pair<dev_t, ino_t>, std::string> linked;  // multiply linked inode -> its copy
  std::string dst_root;
  CopyStats stats;
};

Result<void> copy_bytes(int in, int out, off_t size, const std::string& what) {
  if (::ioctl(out, FICLONE, in) == 0) return ok();
  off_t left = size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, size_t(left), 0);
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) break;
    if (n < 0) return Error::sys("copy " + what);
    if (n == 0) return ok();  // the file shrank meanwhile
    left -= n;
  }
  char buf[1 << 16];
  while (left > 0) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0) return Error::sys("read " + what);
    if (n == 0) break;
    for (ssize_t w = 0; w < n;) {
      ssize_t k = ::write(out, buf + w, size_t(n - w));
      if (k < 0) return Error::sys("write copy of " + what);
      w += k;
    }
    left -= n;
  }
  return ok();
}

// Owner, mode (after the owner: chown clears set-id bits) and times of a made entry.
Result<void> set_attrs(int dirfd, const char* name, const struct stat& st, const std::string& what) {
  if (::fchownat(dirfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
    return Error::sys("chown " + what);
  if (!S_ISLNK(st.st_mode) && ::fchmodat(dirfd, name, st.st_mode & 07777, 0) < 0) return Error::sys("chmod " + what);
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0) return Error::sys("set times of " + what);
  return ok();
}

Result<void> copy_dir(Walk& w, int sfd, int dfd, const std::string& rel);

Result<void> copy_entry(Walk& w, int sfd, int dfd, const char* name, const std::string& rel) {
  struct stat st;
  if (::fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return Error::sys("stat " + rel);
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    auto it = w.linked.find({st.st_dev, st.st_ino});
    if (it != w.linked.end()) {
      std::string target = w.dst_root + "/" + it->second;
      if (::linkat(AT_FDCWD, target.c_str(), dfd, name, 0) < 0) return Error::sys("link " + rel);
      ++w.stats.links;
      return ok();
    }
    w.linked[{st.st_dev, st.st_ino}] = rel;
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != w.root_dev) return ok();  // a mount point: not crossed (the empty dir is made)
    if (::mkdirat(dfd, name, 0700) < 0) return Error::sys("mkdir " + rel);
    UniqueFd s(::openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    UniqueFd d(::openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!s || !d) return Error::sys("open " + rel);
    ENVRUN_CHECK(copy_dir(w, s.get(), d.get(), rel));
    ++w.stats.dirs;
  } else if (S_ISREG(st.st_mode)) {
    UniqueFd in(::openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in) return Error::sys("open " + rel);
    UniqueFd out(::openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) return Error::sys("create copy of " + rel);
    ENVRUN_CHECK(copy_bytes(in.get(), out.get(), st.st_size, rel));
    ++w.stats.files;
    w.stats.bytes += uint64_t(st.st_size);
  } else if (S_ISLNK(st.st_mode)) {
    std::vector<char> buf(size_t(st.st_size) + 2);
    ssize_t n = ::readlinkat(sfd, name, buf.data(), buf.size() - 1);
    if (n < 0) return Error::sys("readlink " + rel);
    buf[size_t(n)] = 0;
    if (::symlinkat(buf.data(), dfd, name) < 0) return Error::sys("symlink " + rel);
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
    if (::mknodat(dfd, name, st.st_mode, st.st_rdev) < 0) return Error::sys("mknod " + rel);
  } else {
    return ok();  // a socket: nothing to copy
  }
  return set_attrs(dfd, name, st, rel);
}

Result<void> copy_dir(Walk& w, int sfd, int dfd, const std::string& rel) {
  int dup = ::fcntl(sfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return Error::sys("dup");
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return Error::sys("opendir " + rel);
  }
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& n : names) ENVRUN_CHECK(copy_entry(w, sfd, dfd, n.c_str(), rel.empty() ? n : rel + "/" + n));
  return ok();
}

}  // namespace

Result<CopyStats> copy_tree(const std::string& src, const std::string& dst) {
  UniqueFd s(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!s) return Error::sys(src);
  struct stat st;
  if (::fstat(s.get(), &st) < 0) return Error::sys("stat " + src);
  if (::mkdir(dst.c_str(), 0700) < 0) return Error::sys("mkdir " + dst);
  UniqueFd d(::open(dst.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d) return Error::sys(dst);
  Walk w;
  w.root_dev = st.st_dev;
  w.dst_root = dst;
  ENVRUN_CHECK(copy_dir(w, s.get(), d.get(), ""));
  if (::fchmod(d.get(), st.st_mode & 07777) < 0) return Error::sys("chmod " + dst);
  return w.stats;
}

Result<bool> same_file_contents(const std::string& a, const std::string& b) {
  UniqueFd fa(::open(a.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  UniqueFd fb(::open(b.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fa) return Error::sys(a);
  if (!fb) return errno == ENOENT || errno == ELOOP ? Result<bool>(false) : Result<bool>(Error::sys(b));
  struct stat sa, sb;
  if (::fstat(fa.get(), &sa) < 0 || ::fstat(fb.get(), &sb) < 0) return Error::sys("stat " + a);
  if (sa.st_size != sb.st_size || S_ISREG(sa.st_mode) != S_ISREG(sb.st_mode)) return false;
  if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino) return true;
  static thread_local char ba[1 << 16], bb[1 << 16];
  for (;;) {
    ssize_t na = ::read(fa.get(), ba, sizeof ba);
    if (na < 0) return Error::sys("read " + a);
    if (na == 0) return true;
    ssize_t got = 0;
    while (got < na) {
      ssize_t nb = ::read(fb.get(), bb + got, size_t(na - got));
      if (nb < 0) return Error::sys("read " + b);
      if (nb == 0) return false;
      got += nb;
    }
    if (std::memcmp(ba, bb, size_t(na)) != 0) return false;
  }
}

}  // namespace envrun::agent
