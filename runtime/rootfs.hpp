// The container's filesystem view: mounts from the spec, /dev, pivot_root,
// masked and read-only paths, sysctl. Runs inside the container's init.
#pragma once
#include <string>
#include <vector>

#include "bundle/spec.hpp"
#include "kernel/result.hpp"
#include "runtime/cgroup.hpp"

namespace envrun::runtime {

struct MountOptions {
  unsigned long flags = 0;               // MS_* set
  unsigned long clear = 0;               // MS_* explicitly cleared (rw, suid, dev, ...)
  std::vector<unsigned long> propagation;  // MS_PRIVATE|MS_REC ...
  std::string data;                      // fs-specific options ("mode=755,size=65536k")
  bool bind = false;
};
MountOptions parse_mount_options(const std::vector<std::string>& opts);
unsigned long propagation_flag(const std::string& name);  // "rslave" -> MS_SLAVE|MS_REC; 0 if unknown

// Join `path` under `root`, resolving symlinks as if `root` were "/": the result never escapes root.
Result<std::string> secure_join(const std::string& root, const std::string& path);

struct RootfsContext {
  std::string rootfs;                 // absolute host path
  bool mount_ns = true;
  bool user_ns = false;               // mknod not allowed: bind host device nodes instead
  bool cgroup_ns = false;
  bool no_pivot = false;              // MS_MOVE the rootfs onto / and chroot (for ramfs roots, like runc)
  const CgroupMounts* cgroup_mounts = nullptr;
  std::string cgroup_path;
};

// Before pivot_root: set propagation, make rootfs a mount point, do the spec's mounts,
// create default and listed devices.
Result<void> prepare_rootfs(const oci::Spec& spec, const RootfsContext& ctx);
// pivot_root into rootfs (chroot when there is no mount namespace).
Result<void> enter_rootfs(const RootfsContext& ctx);
// After pivot_root: sysctl, masked paths, read-only paths, read-only root.
Result<void> finish_rootfs(const oci::Spec& spec);

}  // namespace envrun::runtime
