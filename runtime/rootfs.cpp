#include "runtime/rootfs.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "kernel/fs.hpp"

namespace envrun::runtime {

MountOptions parse_mount_options(const std::vector<std::string>& opts) {
  struct Flag {
    const char* name;
    bool clear;
    unsigned long flag;
  };
  static const Flag table[] = {
      {"ro", false, MS_RDONLY},         {"rw", true, MS_RDONLY},         {"nosuid", false, MS_NOSUID},
      {"suid", true, MS_NOSUID},        {"nodev", false, MS_NODEV},      {"dev", true, MS_NODEV},
      {"noexec", false, MS_NOEXEC},     {"exec", true, MS_NOEXEC},       {"sync", false, MS_SYNCHRONOUS},
      {"async", true, MS_SYNCHRONOUS},  {"dirsync", false, MS_DIRSYNC},  {"remount", false, MS_REMOUNT},
      {"mand", false, MS_MANDLOCK},     {"nomand", true, MS_MANDLOCK},   {"atime", true, MS_NOATIME},
      {"noatime", false, MS_NOATIME},   {"diratime", true, MS_NODIRATIME}, {"nodiratime", false, MS_NODIRATIME},
      {"relatime", false, MS_RELATIME}, {"norelatime", true, MS_RELATIME}, {"strictatime", false, MS_STRICTATIME},
      {"nostrictatime", true, MS_STRICTATIME}, {"defaults", false, 0}, {"silent", false, MS_SILENT},
  };
  MountOptions out;
  for (auto& o : opts) {
    if (o == "bind") {
      out.bind = true;
      out.flags |= MS_BIND;
      continue;
    }
    if (o == "rbind") {
      out.bind = true;
      out.flags |= MS_BIND | MS_REC;
      continue;
    }
    if (unsigned long p = propagation_flag(o)) {
      out.propagation.push_back(p);
      continue;
    }
    bool known = false;
    for (auto& f : table) {
      if (o == f.name) {
        known = true;
        if (f.clear) {
          out.flags &= ~f.flag;
          out.clear |= f.flag;
        } else {
          out.flags |= f.flag;
          out.clear &= ~f.flag;
        }
        break;
      }
    }
    if (known) continue;
    if (o == "tmpcopyup" || o.rfind("x-", 0) == 0 || o == "idmap" || o == "ridmap") continue;
    if (!out.data.empty()) out.data += ',';
    out.data += o;
  }
  return out;
}

unsigned long propagation_flag(const std::string& n) {
  if (n == "private") return MS_PRIVATE;
  if (n == "rprivate") return MS_PRIVATE | MS_REC;
  if (n == "shared") return MS_SHARED;
  if (n == "rshared") return MS_SHARED | MS_REC;
  if (n == "slave") return MS_SLAVE;
  if (n == "rslave") return MS_SLAVE | MS_REC;
  if (n == "unbindable") return MS_UNBINDABLE;
  if (n == "runbindable") return MS_UNBINDABLE | MS_REC;
  return 0;
}

Result<std::string> secure_join(const std::string& root, const std::string& path) {
  std::vector<std::string> todo;  // components still to walk, reversed
  auto push_path = [&todo](const std::string& p) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i <= p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string::npos) j = p.size();
      if (j > i) parts.push_back(p.substr(i, j - i));
      i = j + 1;
    }
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_back(*it);
  };
  push_path(path);
  std::vector<std::string> done;
  int links = 0;
  while (!todo.empty()) {
    std::string c = todo.back();
    todo.pop_back();
    if (c == ".") continue;
    if (c == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    std::string cur = root;
    for (auto& d : done) cur += "/" + d;
    cur += "/" + c;
    struct stat st;
    if (::lstat(cur.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (++links > 255) return Error::sys("resolve " + path, ELOOP);
      char buf[PATH_MAX];
      ssize_t n = ::readlink(cur.c_str(), buf, sizeof buf - 1);
      if (n < 0) return Error::sys("readlink " + cur);
      std::string target(buf, size_t(n));
      if (!target.empty() && target[0] == '/') done.clear();
      push_path(target);
      continue;
    }
    done.push_back(c);
  }
  std::string out = root;
  for (auto& d : done) out += "/" + d;
  return out;
}

// Create the mount point: a directory, or an empty file when binding a non-directory.
static Result<void> make_mountpoint(const std::string& dest, bool file) {
  if (fs::exists(dest)) return ok();
  auto slash = dest.rfind('/');
  ENVRUN_CHECK(fs::mkdir_p(dest.substr(0, slash)));
  if (!file) return fs::mkdir_p(dest);
  int fd = ::open(dest.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return Error::sys("create " + dest);
  ::close(fd);
  return ok();
}

static Result<void> do_mount(const std::string& src, const std::string& dst, const std::string& type,
                             unsigned long flags, const std::string& data) {
  if (::mount(src.c_str(), dst.c_str(), type.empty() ? nullptr : type.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) != 0)
    return Error::sys("mount " + (src.empty() ? type : src) + " on " + dst);
  return ok();
}

// The calling process's own cgroup in the v1 hierarchy of `ctrl` ("/" when unknown):
// the container has no directory of its own in hierarchies it did not need.
static std::string own_v1_cgroup(const std::string& ctrl) {
  auto text = fs::read_file("/proc/self/cgroup");
  if (!text) return "/";
  size_t i = 0;
  while (i < text->size()) {
    size_t nl = text->find('\n', i);
    if (nl == std::string::npos) nl = text->size();
    std::string line = text->substr(i, nl - i);
    i = nl + 1;
    auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    std::string ctrls = "," + line.substr(c1 + 1, c2 - c1 - 1) + ",";
    std::string want = ctrl == "systemd" ? "name=systemd" : ctrl;
    if (ctrls.find("," + want + ",") != std::string::npos) return line.substr(c2 + 1);
  }
  return "/";
}

static Result<void> mount_cgroup(const oci::Mount& m, const std::string& dest, const MountOptions& mo,
                                 const RootfsContext& ctx) {
  unsigned long ro = mo.flags & MS_RDONLY;
  unsigned long base = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const CgroupMounts* cm = ctx.cgroup_mounts;
  if (!cm || cm->layout == CgroupLayout::V2) {
    if (ctx.cgroup_ns) return do_mount("cgroup2", dest, "cgroup2", base | ro, "");
    std::string src = (cm ? cm->unified : std::string("/sys/fs/cgroup")) + ctx.cgroup_path;
    ENVRUN_CHECK(do_mount(src, dest, "", MS_BIND | MS_REC, ""));
    return do_mount("", dest, "", MS_BIND | MS_REMOUNT | base | ro, "");
  }
  // v1 / hybrid: a tmpfs with one directory per hierarchy.
  ENVRUN_CHECK(do_mount("tmpfs", dest, "tmpfs", base, "mode=755"));
  std::map<std::string, std::vector<std::string>> by_dir;  // mount dir -> controllers
  for (auto& [ctrl, dir] : cm->v1) by_dir[dir].push_back(ctrl);
  for (auto& [dir, ctrls] : by_dir) {
    std::string name = dir.substr(dir.rfind('/') + 1);
    std::string target = dest + "/" + name;
    ENVRUN_CHECK(fs::mkdir_p(target));
    if (ctx.cgroup_ns) {
      std::string opts;
      for (auto& c : ctrls) opts += (opts.empty() ? "" : ",") + (c == "systemd" ? std::string("none,name=systemd") : c);
      if (do_mount("cgroup", target, "cgroup", base | ro, opts)) continue;
    }
    std::string src = dir + ctx.cgroup_path;
    if (!fs::is_dir(src)) src = dir + own_v1_cgroup(ctrls.front());
    ENVRUN_CHECK(do_mount(src, target, "", MS_BIND | MS_REC, ""));
    ENVRUN_CHECK(do_mount("", target, "", MS_BIND | MS_REMOUNT | base | ro, ""));
  }
  if (!cm->unified.empty()) {
    std::string target = dest + "/unified";
    ENVRUN_CHECK(fs::mkdir_p(target));
    std::string src = cm->unified + ctx.cgroup_path;
    if (!fs::is_dir(src)) src = cm->unified;
    if (!ctx.cgroup_ns || !do_mount("cgroup2", target, "cgroup2", base | ro, "")) {
      ENVRUN_CHECK(do_mount(src, target, "", MS_BIND | MS_REC, ""));
      ENVRUN_CHECK(do_mount("", target, "", MS_BIND | MS_REMOUNT | base | ro, ""));
    }
  }
  if (ro) return do_mount("", dest, "", MS_REMOUNT | base | MS_RDONLY, "mode=755");
  (void)m;
  return ok();
}

static Result<void> mount_one(const oci::Mount& m, const RootfsContext& ctx, size_t index) {
  std::string field = "mounts[" + std::to_string(index) + "] (" + m.destination + ")";
  auto dest = secure_join(ctx.rootfs, m.destination);
  if (!dest) return std::move(dest).error().with_context(field);
  MountOptions mo = parse_mount_options(m.options);
  if (m.type == "bind") mo.bind = true, mo.flags |= MS_BIND;
  if (m.type == "cgroup" || m.type == "cgroup2") {
    auto r = make_mountpoint(*dest, false);
    if (r) r = mount_cgroup(m, *dest, mo, ctx);
    if (!r) return std::move(r).error().with_context(field);
    return ok();
  }
  if (mo.bind) {
    struct stat st;
    if (::stat(m.source.c_str(), &st) != 0) return Error::sys(field + ": source " + m.source);
    ENVRUN_CHECK(make_mountpoint(*dest, !S_ISDIR(st.st_mode)));
    auto r = do_mount(m.source, *dest, "", MS_BIND | (mo.flags & MS_REC), "");
    // Flags other than bind/rec need a remount of the bind mount.
    unsigned long extra = mo.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
    if (r && extra) r = do_mount("", *dest, "", MS_BIND | MS_REMOUNT | extra, "");
    if (!r) return std::move(r).error().with_context(field);
  } else {
    ENVRUN_CHECK(make_mountpoint(*dest, false));
    std::string src = m.source.empty() ? m.type : m.source;
    auto r = do_mount(src, *dest, m.type, mo.flags & ~MS_REMOUNT, mo.data);
    if (!r && m.type == "sysfs" && (r.error().sys_errno == EPERM)) {
      // In a user namespace without its own network namespace, sysfs cannot be mounted: bind the host's.
      r = do_mount("/sys", *dest, "", MS_BIND | MS_REC, "");
      if (r) r = do_mount("", *dest, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
    }
    if (!r && m.type == "mqueue" && r.error().sys_errno == EPERM) {
      r = do_mount("/dev/mqueue", *dest, "", MS_BIND, "");
    }
    if (!r) return std::move(r).error().with_context(field);
  }
  for (auto p : mo.propagation) {
    if (::mount(nullptr, dest->c_str(), nullptr, p, nullptr) != 0)
      return Error::sys(field + ": set propagation");
  }
  return ok();
}

struct DefaultDevice {
  const char* path;
  unsigned major, minor;
};
static const DefaultDevice kDefaultDevices[] = {
    {"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
};

static Result<void> create_device(const RootfsContext& ctx, const std::string& path, mode_t type, unsigned major,
                                  unsigned minor, mode_t perm, uid_t uid, gid_t gid) {
  auto dest = secure_join(ctx.rootfs, path);
  if (!dest) return std::move(dest).error();
  auto slash = dest->rfind('/');
  ENVRUN_CHECK(fs::mkdir_p(dest->substr(0, slash)));
  ::unlink(dest->c_str());
  if (!ctx.user_ns && ::mknod(dest->c_str(), type | perm, makedev(major, minor)) == 0) {
    if (::chown(dest->c_str(), uid, gid) != 0) return Error::sys("chown " + *dest);
    // mknod honours the umask; set the exact mode.
    if (::chmod(dest->c_str(), perm) != 0) return Error::sys("chmod " + *dest);
    return ok();
  }
  if (!ctx.user_ns && errno != EPERM) return Error::sys("mknod " + *dest);
  // No mknod (user namespace): bind-mount the host's node.
  ENVRUN_CHECK(make_mountpoint(*dest, true));
  return do_mount(path, *dest, "", MS_BIND, "");
}

static Result<void> setup_dev(const oci::Spec& spec, const RootfsContext& ctx) {
  mode_t old = ::umask(0);
  for (auto& d : kDefaultDevices) {
    auto r = create_device(ctx, d.path, S_IFCHR, d.major, d.minor, 0666, 0, 0);
    if (!r) {
      ::umask(old);
      return std::move(r).error().with_context("device " + std::string(d.path));
    }
  }
  if (spec.linux) {
    for (size_t i = 0; i < spec.linux->devices.size(); ++i) {
      auto& d = spec.linux->devices[i];
      mode_t type = d.type == "b" ? S_IFBLK : d.type == "p" ? S_IFIFO : S_IFCHR;
      auto r = create_device(ctx, d.path, type, unsigned(d.major), unsigned(d.minor),
                             d.file_mode.value_or(0666) & 07777, d.uid.value_or(0), d.gid.value_or(0));
      if (!r) {
        ::umask(old);
        return std::move(r).error().with_context("linux.devices[" + std::to_string(i) + "] " + d.path);
      }
    }
  }
  ::umask(old);
  struct Link {
    const char* target;
    const char* path;
  };
  static const Link links[] = {{"/proc/self/fd", "/dev/fd"},   {"/proc/self/fd/0", "/dev/stdin"},
                               {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}};
  std::string dev = ctx.rootfs + "/dev";
  for (auto& l : links) ::symlink(l.target, (ctx.rootfs + l.path).c_str());
  if (fs::is_dir(dev + "/pts")) {
    ::unlink((dev + "/ptmx").c_str());
    if (::symlink("pts/ptmx", (dev + "/ptmx").c_str()) != 0) return Error::sys("symlink /dev/ptmx");
  }
  return ok();
}

Result<void> prepare_rootfs(const oci::Spec& spec, const RootfsContext& ctx) {
  if (!ctx.mount_ns) return setup_dev(spec, ctx);
  unsigned long prop = MS_SLAVE | MS_REC;
  if (spec.linux && !spec.linux->rootfs_propagation.empty())
    prop = propagation_flag(spec.linux->rootfs_propagation);
  if (::mount(nullptr, "/", nullptr, prop, nullptr) != 0) return Error::sys("make / " + spec.linux->rootfs_propagation);
  ENVRUN_CHECK(do_mount(ctx.rootfs, ctx.rootfs, "", MS_BIND | MS_REC, ""));
  for (size_t i = 0; i < spec.mounts.size(); ++i) ENVRUN_CHECK(mount_one(spec.mounts[i], ctx, i));
  return setup_dev(spec, ctx);
}

Result<void> enter_rootfs(const RootfsContext& ctx) {
  if (!ctx.mount_ns) {
    if (::chroot(ctx.rootfs.c_str()) != 0) return Error::sys("chroot " + ctx.rootfs);
    if (::chdir("/") != 0) return Error::sys("chdir /");
    return ok();
  }
  if (::chdir(ctx.rootfs.c_str()) != 0) return Error::sys("chdir " + ctx.rootfs);
  if (ctx.no_pivot) {
    if (::mount(ctx.rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) != 0) return Error::sys("move " + ctx.rootfs + " onto /");
    if (::chroot(".") != 0) return Error::sys("chroot " + ctx.rootfs);
    if (::chdir("/") != 0) return Error::sys("chdir /");
    return ok();
  }
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return Error::sys("pivot_root " + ctx.rootfs);
  // The old root is now stacked on "/": keep unmount events away from the host, then detach it.
  if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) return Error::sys("make old root rslave");
  if (::umount2(".", MNT_DETACH) != 0) return Error::sys("unmount old root");
  if (::chdir("/") != 0) return Error::sys("chdir /");
  return ok();
}

static Result<void> mask_path(const std::string& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return ok();  // absent paths need no mask
  if (S_ISDIR(st.st_mode)) return do_mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0k");
  return do_mount("/dev/null", p, "", MS_BIND, "");
}

static Result<void> readonly_path(const std::string& p) {
  if (::mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    if (errno == ENOENT) return ok();
    return Error::sys("bind " + p);
  }
  return do_mount("", p, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, "");
}

Result<void> finish_rootfs(const oci::Spec& spec) {
  if (spec.linux) {
    for (auto& [key, value] : spec.linux->sysctl) {
      std::string path = "/proc/sys/" + key;
      for (size_t i = 10; i < path.size(); ++i)
        if (path[i] == '.') path[i] = '/';
      auto r = fs::write_file(path, value);
      if (!r) return std::move(r).error().with_context("linux.sysctl " + key);
    }
    for (auto& p : spec.linux->masked_paths) {
      auto r = mask_path(p);
      if (!r) return std::move(r).error().with_context("linux.maskedPaths " + p);
    }
    for (auto& p : spec.linux->readonly_paths) {
      auto r = readonly_path(p);
      if (!r) return std::move(r).error().with_context("linux.readonlyPaths " + p);
    }
  }
  if (spec.root.readonly) {
    if (::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      // Keep the flags the mount already has (nosuid, nodev...) that a plain remount may not drop.
      struct statvfs;
      return Error::sys("remount / read-only");
    }
  }
  return ok();
}

}  // namespace envrun::runtime
