// materialize(): directories, files, symlinks, hard links and FIFOs under one directory fd.
#include "ha/materialize.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace envrun::ha {

namespace {

timespec ts_of(int64_t ns) { return timespec{time_t(ns / 1000000000), long(ns % 1000000000)}; }

class Builder {
 public:
  Builder(const ContentStore& store, std::string dest) : store_(store), dest_(std::move(dest)) {}

  Result<void> open_root() {
    if (::mkdir(dest_.c_str(), 0755) < 0) return Error::sys(dest_);
    root_.reset(::open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root_) return Error::sys(dest_);
    return ok();
  }

  Result<void> add(const ManifestEntry& e) {
    auto slash = e.path.rfind('/');
    std::string name = slash == std::string::npos ? e.path : e.path.substr(slash + 1);
    int pfd = ENVRUN_TRY(parent_fd(slash == std::string::npos ? "" : e.path.substr(0, slash)));
    const char* n = name.c_str();
    switch (e.kind) {
      case EntryKind::Dir:
        if (::mkdirat(pfd, n, 0700) < 0) return fail(e);
        return ok();  // owner, mode and time at the end
      case EntryKind::File: return add_file(pfd, e, n);
      case EntryKind::Symlink:
        if (::symlinkat(e.target.c_str(), pfd, n) < 0) return fail(e);
        break;
      case EntryKind::Hardlink:
        if (::linkat(root_.get(), e.target.c_str(), pfd, n, 0) < 0) return fail(e);
        return ok();  // shares the first path's inode and attributes
      case EntryKind::Fifo:
        if (::mkfifoat(pfd, n, 0600) < 0) return fail(e);
        break;
    }
    return set_attrs(pfd, n, e);
  }

  // Directory owners, modes and times, deepest first (a child's creation would change its
  // parent's mtime; a read-only parent would refuse the child).
  Result<void> finish_dirs(const Manifest& m) {
    for (auto it = m.entries.rbegin(); it != m.entries.rend(); ++it) {
      if (it->kind != EntryKind::Dir) continue;
      parent_path_.clear(), parent_.reset();
      auto slash = it->path.rfind('/');
      int pfd = ENVRUN_TRY(parent_fd(slash == std::string::npos ? "" : it->path.substr(0, slash)));
      ENVRUN_CHECK(set_attrs(pfd, (slash == std::string::npos ? it->path : it->path.substr(slash + 1)).c_str(), *it));
    }
    return ok();
  }

 private:
  Error fail(const ManifestEntry& e, int err = errno) { return Error::sys(dest_ + "/" + e.path, err); }

  Result<int> parent_fd(const std::string& rel) {
    if (rel.empty()) return root_.get();
    if (parent_ && rel == parent_path_) return parent_.get();
    open_how how{};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, root_.get(), rel.c_str(), &how, sizeof how);
    if (fd < 0) return Error::sys(dest_ + "/" + rel);
    parent_.reset(int(fd));
    parent_path_ = rel;
    return parent_.get();
  }

  Result<void> add_file(int pfd, const ManifestEntry& e, const char* n) {
    std::string blob = store_.path(e.sha256);
    UniqueFd in(::open(blob.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return Error::sys(blob + " (for " + e.path + ")");
    struct stat st {};
    if (::fstat(in.get(), &st) < 0 || uint64_t(st.st_size) != e.size)
      return Error::make(ErrorKind::Generic, blob + ": size differs from " + e.path + "'s (a damaged blob)");
    UniqueFd out(::openat(pfd, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) return fail(e);
    for (uint64_t left = e.size; left > 0;) {
      ssize_t k = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, left, 0);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) return fail(e);
      if (k == 0) return Error::make(ErrorKind::Generic, blob + ": shorter than " + e.path);
      left -= uint64_t(k);
    }
    if (::fchown(out.get(), e.uid, e.gid) < 0 || ::fchmod(out.get(), e.mode) < 0) return fail(e);
    timespec t[2] = {ts_of(e.mtime_ns), ts_of(e.mtime_ns)};
    if (::futimens(out.get(), t) < 0) return fail(e);
    return ok();
  }

  Result<void> set_attrs(int pfd, const char* n, const ManifestEntry& e) {
    if (::fchownat(pfd, n, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) < 0) return fail(e);
    if (e.kind != EntryKind::Symlink && ::fchmodat(pfd, n, e.mode, 0) < 0) return fail(e);
    timespec t[2] = {ts_of(e.mtime_ns), ts_of(e.mtime_ns)};
    if (::utimensat(pfd, n, t, AT_SYMLINK_NOFOLLOW) < 0) return fail(e);
    return ok();
  }

  const ContentStore& store_;
  std::string dest_;
  UniqueFd root_, parent_;
  std::string parent_path_;
};

}  // namespace

Result<void> materialize(const Manifest& m, const ContentStore& store, const std::string& dest,
                         const std::function<void()>& progress) {
  Builder b(store, dest);
  ENVRUN_CHECK(b.open_root());
  size_t n = 0;
  for (const auto& e : m.entries) {
    ENVRUN_CHECK(b.add(e));
    if (progress && ++n % 64 == 0) progress();
  }
  return b.finish_dirs(m);
}

}  // namespace envrun::ha
