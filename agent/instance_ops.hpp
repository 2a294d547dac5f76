// Acting on an agent's instances (containers in DIR/state) the way a user would: each step
// is an `envrun --root DIR/state ...` child process (the checkpoint engine ptraces and
// forks stubs; a container's init must not be a thread of the agent), bounded in time.
#pragma once
#include <string>
#include <vector>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"
#include "runtime/state.hpp"

namespace envrun::agent {

class InstanceOps {
 public:
  explicit InstanceOps(std::string state_root) : state_(std::move(state_root)) {}
  const std::string& state_root() const { return state_; }
  runtime::StateStore store() const { return runtime::StateStore(state_); }

  // Runs `envrun --root STATE args...`; an error names the command and carries its stderr.
  // out_fd >= 0: the child's stdout and stderr go there (a detached container keeps them).
  Result<void> envrun(const std::vector<std::string>& args, int timeout_s, int out_fd = -1) const;

  // Current status; Stopped when the instance does not exist.
  runtime::Status status(const std::string& id) const;
  bool exists(const std::string& id) const;
  // SIGTERM, up to grace_s for the processes to exit, then delete -f (SIGKILL) and delete.
  Result<void> stop_and_delete(const std::string& id, int grace_s) const;
  // `run -d -b DIR ID` with its output appended to `log` (errors quote the log's new lines).
  Result<void> start_from(const std::string& id, const std::string& bundle_dir, const std::string& log) const;
  Result<void> checkpoint(const std::string& id, const std::string& image_dir) const;
  Result<void> restore(const std::string& id, const std::string& bundle_dir, const std::string& image_dir) const;

  // Where the instance's output goes: its init's stdout when that is a file on the host,
  // else `fallback`.
  std::string output_of(const std::string& id, const std::string& fallback) const;

 private:
  std::string state_;
};

}  // namespace envrun::agent
