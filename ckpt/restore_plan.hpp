// What restore builds from the image before any process exists: the tree, the open
// files re-created by the engine (inherited by the stub tree at fork), and the
// memfds that stand for shared anonymous memory.
#pragma once
#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ckpt/image.hpp"
#include "ckpt/infect/infect.hpp"
#include "ckpt/model.hpp"
#include "kernel/fd.hpp"

namespace envrun::ckpt {

struct ProcPlan {
  ProcessCore core;
  std::vector<infect::ThreadRegs> regs;  // parallel to core.threads
  std::vector<size_t> children;          // indexes into Plan::procs
  pid_t host_pid = 0;
  std::vector<pid_t> host_tids;
};

struct Plan {
  nlohmann::json inventory;
  std::vector<OpenFile> files;
  std::map<uint64_t, std::vector<uint8_t>> file_data;
  std::vector<ProcPlan> procs;                 // procs[0] is the root
  std::map<uint64_t, UniqueFd> file_fds;       // OpenFile id -> engine fd
  std::vector<UniqueFd> pipe_ends;             // both ends of every re-created pipe (dups go to file_fds)
  std::map<uint64_t, UniqueFd> shm_fds;        // shared anonymous memory (inode) -> memfd
  std::string old_root, new_root;              // host directories: the dumped root, the new one

  // A dumped host path as the restored processes see it (below their root) ...
  std::string inside(const std::string& host_path) const;
  // ... and where the engine finds it now on the host.
  std::string outside(const std::string& host_path) const;
  size_t index_of(pid_t pid) const;  // procs index of an image pid (npos if none)
  // The bytes of FileData section `id`; nullptr for id 0 or a section the image lacks.
  const std::vector<uint8_t>* data(uint64_t id) const;
  // The lowest fd number no restored process uses: fds the stubs keep for themselves
  // (ready pipe, shared memory) live at or above it.
  int fd_floor() const;
};

// Reads the sections up to the first memory section (returned in `first_memory`, or
// nullopt when the image has no memory sections: then the End was read).
Result<Plan> read_plan(ImageReader& in, std::optional<SectionHeader>& first_memory);
// Re-creates every open file, pipe and shared memory object in the engine, with the
// dumped flags, offsets and buffered bytes; not the files below the dumped tree's own
// mounts (its rootfs, a tmpfs /dev, /dev/shm ...): opened_inside().
Result<void> open_files(Plan& p);
// Files the root stub opens itself, by their paths inside the restored tree's mounts.
bool opened_inside(const OpenFile& f);
Result<void> open_files_inside(const Plan& p, std::map<uint64_t, UniqueFd>& out);

}  // namespace envrun::ckpt
