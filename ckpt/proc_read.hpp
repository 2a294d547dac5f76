// Reading a stopped process from /proc: its tree, identity, mappings and fd table.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include "ckpt/model.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt::proc {

// Thread ids of a process (host pids), main thread first.
Result<std::vector<pid_t>> threads(pid_t pid);
// Children of every thread of pid (host pids).
std::vector<pid_t> children(pid_t pid);
// pid and its descendants, parents before children.
std::vector<pid_t> tree(pid_t root);
// /proc/PID/status: ids (innermost pid namespace), creds, umask, zombie state;
// /proc/PID/stat: mm fields and the exit code; comm, exe, cwd, root links.
Result<void> read_identity(pid_t pid, ProcessCore& p);
// A thread's id in its innermost pid namespace (NSpid of /proc/PID/task/TID/status).
pid_t ns_tid(pid_t pid, pid_t tid);
// /proc/PID/maps.
Result<std::vector<Vma>> read_maps(pid_t pid);
// /proc/PID/auxv as 64-bit words.
Result<std::vector<uint64_t>> read_auxv(pid_t pid);
// One fd: the /proc link text and the fdinfo fields.
struct FdInfo {
  int fd = 0;
  std::string link;
  int64_t pos = 0;
  int flags = 0;  // octal "flags" of fdinfo (includes O_CLOEXEC)
  int mnt_id = -1;
  std::string text;  // the whole fdinfo (epoll targets, eventfd count, ...)
};
// Mount ids of this process's mount namespace (/proc/self/mountinfo): a file on one of
// them has a path the host can open; others are below a container's own mounts.
std::vector<int> own_mount_ids();
Result<std::vector<FdInfo>> read_fds(pid_t pid);

}  // namespace envrun::ckpt::proc
