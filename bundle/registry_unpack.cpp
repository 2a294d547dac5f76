// unpack_layer: libarchive read loop, whiteouts, safe creation beneath the rootfs.
#include "bundle/registry_unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <vector>

#include "bundle/registry_fs_at.hpp"
#include "bundle/registry_pull.hpp"
#include "kernel/log.hpp"

namespace envrun::registry {
namespace {

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

struct LayerState {
  int root;
  bool as_root = ::geteuid() == 0;
  std::set<std::string> created;  // rootfs paths this layer wrote (spared by opaque whiteouts)
  UnpackStats stats;
  // The parent directory of the previous entry: tars list a directory's entries together.
  // An entry only changes names inside its parent, so the fd stays right for its siblings.
  std::string parent_path;
  UniqueFd parent_fd;
  // Directories' times are set once the layer is done: creating their entries changes them.
  std::vector<std::pair<EntryPath, struct timespec>> dir_times;
};

Result<int> parent_dir(LayerState& st, const std::string& rel) {
  if (!st.parent_fd || st.parent_path != rel) {
    st.parent_fd = ENVRUN_TRY(at::open_dir_beneath(st.root, rel, true));
    st.parent_path = rel;
  }
  return st.parent_fd.get();
}

Result<void> set_owner_mode_time(int dirfd, const std::string& name, int fd, archive_entry* e, bool as_root) {
  mode_t mode = archive_entry_perm(e) & 07777;
  if (as_root) {
    int r = fd >= 0 ? ::fchown(fd, archive_entry_uid(e), archive_entry_gid(e))
                    : ::fchownat(dirfd, name.c_str(), archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW);
    if (r != 0) return Error::sys("chown");
  }
  struct timespec ts[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                           {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
  if (archive_entry_filetype(e) == AE_IFLNK) {
    ::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);  // best effort, like a file's
    return ok();
  }
  if ((fd >= 0 ? ::fchmod(fd, mode) : ::fchmodat(dirfd, name.c_str(), mode, 0)) != 0) return Error::sys("chmod");
  if (archive_entry_filetype(e) == AE_IFDIR) return ok();  // at the end of the layer (set_dir_times)
  if (fd >= 0) ::futimens(fd, ts);
  else ::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
  return ok();
}

Result<void> write_file(archive* a, archive_entry* e, int dirfd, const std::string& name, LayerState& st) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return Error::sys("create");
  const void* buf;
  size_t size;
  la_int64_t off, end = 0;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &size, &off);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return Error::make(ErrorKind::Config, std::string("reading data: ") + archive_error_string(a));
    for (size_t done = 0; done < size;) {
      ssize_t w = ::pwrite(fd.get(), static_cast<const char*>(buf) + done, size - done, off + la_int64_t(done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return Error::sys("write");
      done += size_t(w);
    }
    st.stats.bytes += size;
    end = std::max(end, off + la_int64_t(size));
  }
  if (end != archive_entry_size(e) && ::ftruncate(fd.get(), archive_entry_size(e)) != 0)
    return Error::sys("truncate");  // sparse tail
  if (st.as_root) {
    archive_entry_xattr_reset(e);
    const char* xname;
    const void* xval;
    size_t xlen;
    while (archive_entry_xattr_next(e, &xname, &xval, &xlen) == ARCHIVE_OK)
      if (::fsetxattr(fd.get(), xname, xval, xlen, 0) != 0) log::debug("pull: xattr " + std::string(xname) + " on " + name + ": " + std::strerror(errno));
  }
  return set_owner_mode_time(dirfd, name, fd.get(), e, st.as_root);
}

Result<void> make_node(archive_entry* e, int dirfd, const std::string& name, LayerState& st) {
  mode_t type = archive_entry_filetype(e);
  if (type == AE_IFDIR) {
    if (::mkdirat(dirfd, name.c_str(), 0700) != 0) {
      struct stat old {};
      if (errno != EEXIST) return Error::sys("mkdir");
      if (::fstatat(dirfd, name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(old.st_mode))
        return Error::sys("mkdir", EEXIST);  // a non-directory is in the way: replaced by the caller
    }
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return Error::sys("open directory");
    return set_owner_mode_time(dirfd, name, fd.get(), e, st.as_root);
  }
  if (type == AE_IFLNK) {
    const char* target = archive_entry_symlink(e);
    if (!target) target = archive_entry_symlink_utf8(e);
    if (!target || ::symlinkat(target, dirfd, name.c_str()) != 0) return Error::sys("symlink");
    return set_owner_mode_time(dirfd, name, -1, e, st.as_root);
  }
  dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
  mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : type == AE_IFIFO ? S_IFIFO : 0;
  if (kind == 0) return Error::make(ErrorKind::Config, "unsupported entry type");
  if (::mknodat(dirfd, name.c_str(), kind | 0600, dev) != 0) {
    if (errno == EPERM && !st.as_root) {  // device nodes need root: rootless pulls skip them
      log::debug("pull: skipping device node " + name + " (not root)");
      return ok();
    }
    return Error::sys("mknod");
  }
  return set_owner_mode_time(dirfd, name, -1, e, st.as_root);
}

Result<void> hard_link(archive_entry* e, int dirfd, const std::string& name, LayerState& st) {
  const char* raw = archive_entry_hardlink(e);
  auto target = ENVRUN_TRY(classify_entry(raw ? raw : ""));
  if (target.kind != EntryKind::Normal) return Error::make(ErrorKind::Config, "hard link to a whiteout or the root");
  auto tdir = ENVRUN_TRY(at::open_dir_beneath(st.root, target.parent, false));
  if (::linkat(tdir.get(), target.name.c_str(), dirfd, name.c_str(), 0) != 0)
    return Error::sys("hard link to \"" + target.full() + "\"");
  return ok();
}

Result<void> apply_entry(archive* a, archive_entry* e, LayerState& st) {
  const char* raw = archive_entry_pathname(e);
  if (!raw) raw = archive_entry_pathname_utf8(e);
  auto p = ENVRUN_TRY(classify_entry(raw ? raw : ""));
  if (p.kind == EntryKind::Root) return ok();  // "./": the rootfs itself keeps its mode
  int dir = ENVRUN_TRY(parent_dir(st, p.parent));
  if (p.kind == EntryKind::Whiteout) return at::remove_at(dir, p.name);
  if (p.kind == EntryKind::Opaque) return at::clear_dir(dir, p.parent, st.created);
  st.created.insert(p.full());
  st.stats.entries++;
  auto create = [&]() -> Result<void> {
    if (archive_entry_hardlink(e)) return hard_link(e, dir, p.name, st);
    if (archive_entry_filetype(e) == AE_IFREG) return write_file(a, e, dir, p.name, st);
    return make_node(e, dir, p.name, st);
  };
  auto r = create();
  if (!r && r.error().sys_errno == EEXIST) {
    // Whatever the layers below left under this name goes (a directory stays for a directory,
    // in make_node), then the entry is created again.
    ENVRUN_CHECK(at::remove_at(dir, p.name));
    r = create();
  }
  if (r && archive_entry_filetype(e) == AE_IFDIR && !archive_entry_hardlink(e))
    st.dir_times.push_back({p, {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}});
  return r;
}

// The directories' modification times from the layer, once nothing more is created in them.
void set_dir_times(LayerState& st) {
  st.parent_fd.reset();
  st.parent_path.clear();
  for (const auto& [p, t] : st.dir_times) {
    auto dir = parent_dir(st, p.parent);
    struct timespec ts[2] = {t, t};
    if (!dir || ::utimensat(*dir, p.name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
      log::debug("pull: cannot set the time of " + p.full());
  }
}

// A layer error keeps the system error (ENOSPC, EDQUOT...) under the message naming the entry.
Error layer_error(Error e, const std::string& msg) {
  return Error{e.sys_errno, e.sys_errno ? ErrorKind::System : ErrorKind::Config, msg};
}

}  // namespace

Result<UnpackStats> unpack_layer(const std::string& blob_path, int rootfs_fd, const std::string& what) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open_filename(a.get(), blob_path.c_str(), 1 << 17) != ARCHIVE_OK)
    return Error::make(ErrorKind::Config, what + ": " + archive_error_string(a.get()));
  LayerState st{rootfs_fd};
  for (;;) {
    if (cancel_requested()) return interrupted_error();
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN)
      return Error::make(ErrorKind::Config, what + ": not a valid tar layer: " + archive_error_string(a.get()));
    auto applied = apply_entry(a.get(), e, st);
    if (!applied) {
      const char* n = archive_entry_pathname(e);
      Error err = std::move(applied).error();
      std::string msg = err.message;
      if (msg.rfind("entry \"", 0) != 0) msg = "entry \"" + std::string(n ? n : "?") + "\": " + msg;
      return layer_error(std::move(err), what + ": " + msg);
    }
  }
  set_dir_times(st);
  return st.stats;
}

}  // namespace envrun::registry
