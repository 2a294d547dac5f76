// build_manifest: the walk over a bundle directory (file-descriptor based, never
// following a symlink), with hashes reused from the HashCache.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "bundle/spec_parser.hpp"
#include "ha/crypto.hpp"
#include "ha/manifest.hpp"
#include "kernel/fd.hpp"
#include "kernel/fs.hpp"

namespace envrun::ha {

uint64_t Manifest::file_count() const {
  return uint64_t(std::count_if(entries.begin(), entries.end(), [](const auto& e) { return e.kind == EntryKind::File; }));
}

uint64_t Manifest::file_bytes() const {
  uint64_t n = 0;
  for (const auto& e : entries)
    if (e.kind == EntryKind::File) n += e.size;
  return n;
}

namespace {

int64_t ns_of(const timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

class Walker {
 public:
  Walker(std::string bundle, HashCache& cache, Manifest& m) : bundle_(std::move(bundle)), cache_(cache), m_(m) {}

  Result<void> add(int dirfd, const std::string& name, const std::string& rel) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return Error::sys(where(rel));
    ManifestEntry e{rel, EntryKind::File, uint32_t(st.st_mode & 07777), st.st_uid, st.st_gid, 0, ns_of(st.st_mtim), {}, {}};
    if (S_ISDIR(st.st_mode)) {
      e.kind = EntryKind::Dir;
      m_.entries.push_back(e);
      return add_dir(dirfd, name, rel);
    }
    if (S_ISREG(st.st_mode)) {
      if (st.st_nlink > 1) {
        auto [it, fresh] = links_.try_emplace({st.st_dev, st.st_ino}, rel);
        if (!fresh) {
          e.kind = EntryKind::Hardlink, e.target = it->second;
          m_.entries.push_back(e);
          return ok();
        }
      }
      e.size = uint64_t(st.st_size);
      e.sha256 = ENVRUN_TRY(hash(dirfd, name, rel, st));
    } else if (S_ISLNK(st.st_mode)) {
      e.kind = EntryKind::Symlink;
      std::vector<char> buf(size_t(st.st_size) + 2);
      ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
      if (n < 0) return Error::sys(where(rel));
      e.target.assign(buf.data(), size_t(n));
    } else if (S_ISFIFO(st.st_mode)) {
      e.kind = EntryKind::Fifo;
    } else if (S_ISSOCK(st.st_mode)) {
      return ok();  // a socket is re-created by whoever binds it
    } else {
      return Error::make(ErrorKind::Config, where(rel) + ": a " + (S_ISCHR(st.st_mode) ? "character" : "block") +
                                                " device node: bundles with device nodes are not migrated (the "
                                                "runtime creates /dev; remove the node from the bundle)");
    }
    m_.entries.push_back(std::move(e));
    return ok();
  }

  std::string where(const std::string& rel) const { return fs::join(bundle_, rel); }

 private:
  Result<void> add_dir(int dirfd, const std::string& name, const std::string& rel) {
    UniqueFd d(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) return Error::sys(where(rel));
    std::vector<std::string> names;
    {
      DIR* dir = ::fdopendir(::dup(d.get()));
      if (!dir) return Error::sys(where(rel));
      ::rewinddir(dir);
      while (dirent* de = ::readdir(dir)) {
        std::string n = de->d_name;
        if (n != "." && n != "..") names.push_back(std::move(n));
      }
      ::closedir(dir);
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) ENVRUN_CHECK(add(d.get(), n, rel + "/" + n));
    return ok();
  }

  Result<std::string> hash(int dirfd, const std::string& name, const std::string& rel, const struct stat& st) {
    auto it = cache_.by_path.find(rel);
    if (it != cache_.by_path.end() && it->second.dev == st.st_dev && it->second.ino == st.st_ino &&
        it->second.size == uint64_t(st.st_size) && it->second.mtime_ns == ns_of(st.st_mtim) &&
        it->second.ctime_ns == ns_of(st.st_ctim))
      return it->second.sha256;
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
    if (!fd) return Error::sys(where(rel));
    Sha256 h;
    std::vector<uint8_t> buf(1 << 20);
    for (;;) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::sys(where(rel));
      if (n == 0) break;
      h.update(Bytes(buf.data(), size_t(n)));
      cache_.hashed_bytes += uint64_t(n);
    }
    std::string hex = to_hex(h.final());
    cache_.by_path[rel] = {st.st_dev, st.st_ino, uint64_t(st.st_size), ns_of(st.st_mtim), ns_of(st.st_ctim), hex};
    return hex;
  }

  std::string bundle_;
  HashCache& cache_;
  Manifest& m_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

// The bundle's relative root.path, normalized ("rootfs", "fs/root").
Result<std::string> relative_root(const std::string& bundle_dir) {
  auto spec = ENVRUN_TRY(bundle::load_spec(bundle_dir));
  std::string p = spec.root.path;
  if (p.empty() || p[0] == '/')
    return Error::make(ErrorKind::Config, fs::join(bundle_dir, "config") + ": root.path \"" + p +
                                              "\" is absolute: only a bundle that holds its rootfs (a relative "
                                              "root.path) can be migrated");
  p = fs::normalize(p);
  while (!p.empty() && p[0] == '/') p.erase(0, 1);
  if (p.empty() || p == "." || p.rfind("..", 0) == 0)
    return Error::make(ErrorKind::Config, fs::join(bundle_dir, "config") + ": root.path \"" + spec.root.path +
                                              "\" must name a directory inside the bundle");
  return p;
}

}  // namespace

Result<Manifest> build_manifest(const std::string& bundle_dir, HashCache& cache) {
  std::string root = ENVRUN_TRY(relative_root(bundle_dir));
  UniqueFd top(::open(bundle_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!top) return Error::sys(bundle_dir);
  Manifest m;
  Walker w(bundle_dir, cache, m);
  for (const char* f : {"config.json", "config.yaml", "config.yml", "envrun.yaml", "intercept.yaml"}) {
    struct stat st {};
    if (::fstatat(top.get(), f, &st, AT_SYMLINK_NOFOLLOW) == 0) ENVRUN_CHECK(w.add(top.get(), f, f));
  }
  // Directories leading to the root (root.path "a/b": "a" itself, without its other contents).
  std::string prefix;
  for (size_t pos = root.find('/'); pos != std::string::npos; pos = root.find('/', pos + 1)) {
    prefix = root.substr(0, pos);
    struct stat st {};
    if (::fstatat(top.get(), prefix.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return Error::sys(w.where(prefix));
    if (!S_ISDIR(st.st_mode)) return Error::make(ErrorKind::Config, w.where(prefix) + ": not a directory");
    m.entries.push_back({prefix, EntryKind::Dir, uint32_t(st.st_mode & 07777), st.st_uid, st.st_gid, 0,
                         int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, {}, {}});
  }
  size_t at = m.entries.size();
  ENVRUN_CHECK(w.add(top.get(), root, root));
  if (m.entries.size() <= at || m.entries[at].kind != EntryKind::Dir)
    return Error::make(ErrorKind::Config, w.where(root) + ": the rootfs must be a directory");
  return m;
}

}  // namespace envrun::ha
