// openat2-based helpers for layer unpacking.
#include "bundle/registry_fs_at.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <set>
#include <vector>

namespace envrun::registry::at {
namespace {

int openat2_beneath(int dirfd, const char* path, uint64_t flags) {
  struct open_how how {};
  how.flags = flags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  long r;
  do r = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (r < 0 && errno == EAGAIN);
  return int(r);
}

Error open_error(const std::string& rel, int e) {
  if (e == EXDEV || e == ELOOP)
    return Error::make(ErrorKind::Config, "\"" + rel + "\" leaves the rootfs (through a symlink or \"..\")");
  if (e == ENOTDIR) return Error::make(ErrorKind::Config, "\"" + rel + "\": a component is not a directory");
  return Error::sys("\"" + rel + "\"", e);
}

}  // namespace

Result<UniqueFd> open_dir_beneath(int root, const std::string& rel, bool create) {
  const uint64_t fl = O_PATH | O_DIRECTORY | O_CLOEXEC;
  if (rel.empty()) {
    int fd = ::fcntl(root, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return Error::sys("dup");
    return UniqueFd(fd);
  }
  int fd = openat2_beneath(root, rel.c_str(), fl);
  if (fd >= 0) return UniqueFd(fd);
  if (errno != ENOENT || !create) return open_error(rel, errno);
  // Some layers omit parent directory entries: create them one component at a time.
  std::string prefix;
  for (size_t pos = 0; pos <= rel.size();) {
    size_t next = rel.find('/', pos);
    if (next == std::string::npos) next = rel.size();
    std::string comp = rel.substr(pos, next - pos);
    std::string parent = prefix;
    prefix += (prefix.empty() ? "" : "/") + comp;
    pos = next + 1;
    int pfd = parent.empty() ? ::fcntl(root, F_DUPFD_CLOEXEC, 0) : openat2_beneath(root, parent.c_str(), fl);
    if (pfd < 0) return open_error(parent, errno);
    UniqueFd p(pfd);
    if (::mkdirat(p.get(), comp.c_str(), 0755) != 0 && errno != EEXIST) return Error::sys("mkdir \"" + prefix + "\"");
  }
  fd = openat2_beneath(root, rel.c_str(), fl);
  if (fd < 0) return open_error(rel, errno);
  return UniqueFd(fd);
}

Result<void> remove_at(int dirfd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? ok() : Result<void>(Error::sys("stat \"" + name + "\""));
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) return Error::sys("unlink \"" + name + "\"");
    return ok();
  }
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error::sys("open \"" + name + "\"");
  ENVRUN_CHECK(clear_dir(fd, "", std::set<std::string>{}));
  ::close(fd);
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) return Error::sys("rmdir \"" + name + "\"");
  return ok();
}

template <class Keep>
Result<void> clear_dir(int dirfd, const std::string& prefix, const Keep& keep) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error::sys("open directory \"" + prefix + "\"");
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return Error::sys("fdopendir \"" + prefix + "\"");
  }
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (keep.count(prefix.empty() ? n : prefix + "/" + n)) continue;
    names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) ENVRUN_CHECK(remove_at(dirfd, n));
  return ok();
}

template Result<void> clear_dir<std::set<std::string>>(int, const std::string&, const std::set<std::string>&);

}  // namespace envrun::registry::at
