// Which files of an instance's rootfs its processes have open or mapped, and whether a new
// version's rootfs has the same bytes at those paths: a checkpoint restored on the new
// version re-opens them by path (file-backed pages are not in the image).
#pragma once
#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "kernel/result.hpp"

namespace envrun::agent {

// Paths inside the container (e.g. "/bin/app", "/lib/libc.so.6") of regular files that a
// process in init_pid's pid namespace maps (/proc/P/maps), holds open (/proc/P/fd) or runs
// (/proc/P/exe). `rootfs` is the host path of the container's root (a path shown below it
// is made relative to it). Deleted files are left out (the image carries them).
Result<std::set<std::string>> files_in_use(pid_t init_pid, const std::string& rootfs);

// The paths of `used` that are regular files in old_rootfs whose bytes differ in new_rootfs
// (or that are missing there). Paths not in old_rootfs (other mounts) are not compared.
Result<std::vector<std::string>> changed_files(const std::set<std::string>& used, const std::string& old_rootfs,
                                               const std::string& new_rootfs);

}  // namespace envrun::agent
