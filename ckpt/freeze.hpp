// Freezing a container's processes so that the tree cannot change while it is seized:
// the cgroup freezer (v1 freezer.state, v2 cgroup.freeze), else nothing (ptrace alone).
#pragma once
#include <string>

#include "kernel/result.hpp"

namespace envrun::ckpt {

class Freezer {
 public:
  // dir: the container's freezer cgroup directory (v1 .../freezer/PATH or v2 .../PATH);
  // empty: no freezer (ptrace only).
  explicit Freezer(std::string dir) : dir_(std::move(dir)) {}
  Freezer(const Freezer&) = delete;
  ~Freezer();  // thaws if still frozen
  // Freezes and waits (bounded, 10 s) until the kernel says FROZEN.
  Result<void> freeze();
  Result<void> thaw();
  bool frozen() const { return frozen_; }
  bool active() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool frozen_ = false;
};

}  // namespace envrun::ckpt
