// Copying a directory tree into a new one that shares no inode with it (a library version
// must not change when its source does): regular files cloned (FICLONE, a reflink where the
// filesystem has them) or copied (copy_file_range); directories, symlinks, device nodes and
// fifos made anew; modes, owners and times kept; hard links inside the tree kept as links
// between the copies. Sockets are skipped. Mount points below src are not crossed.
#pragma once
#include <cstdint>
#include <string>

#include "kernel/result.hpp"

namespace envrun::agent {

struct CopyStats {
  uint64_t files = 0, dirs = 0, links = 0, bytes = 0;
};

// `dst` must not exist. On failure it may be left partly copied: the caller removes it.
Result<CopyStats> copy_tree(const std::string& src, const std::string& dst);

// Whether two regular files have the same bytes (size first, then contents).
Result<bool> same_file_contents(const std::string& a, const std::string& b);

}  // namespace envrun::agent
