// Directory-fd helpers for layer unpacking (internal to registry_unpack.cpp): opening a
// path beneath the rootfs without following symlinks out of it, and removing trees.
#pragma once
#include <string>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::registry::at {

// O_PATH|O_DIRECTORY fd of `rel` beneath `root` (openat2 RESOLVE_BENEATH|NO_MAGICLINKS);
// missing directories are created (0755) when `create`. "" is the root itself.
// A path that leaves the root through a symlink or "..": ErrorKind::Config.
Result<UniqueFd> open_dir_beneath(int root, const std::string& rel, bool create);
// rm -rf of `name` in `dirfd` (never follows symlinks); ENOENT is success.
Result<void> remove_at(int dirfd, const std::string& name);
// Remove every child of the directory `dirfd` whose rootfs path ("<prefix>/<child>")
// is not in `keep` (an opaque whiteout spares what its own layer created).
template <class Keep>
Result<void> clear_dir(int dirfd, const std::string& prefix, const Keep& keep);

}  // namespace envrun::registry::at
