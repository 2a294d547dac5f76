// Cgroup freezer, v1 and v2 (freeze.hpp).
#include "ckpt/freeze.hpp"

#include <unistd.h>

#include <chrono>
#include <thread>

#include "kernel/fs.hpp"

namespace envrun::ckpt {

namespace {

bool is_v2(const std::string& dir) { return fs::exists(dir + "/cgroup.freeze"); }

Result<bool> reached(const std::string& dir, bool want_frozen) {
  if (is_v2(dir)) {
    auto ev = fs::read_file(dir + "/cgroup.events");
    if (!ev) return std::move(ev).error();
    return ev->find(want_frozen ? "frozen 1" : "frozen 0") != std::string::npos;
  }
  auto st = fs::read_file(dir + "/freezer.state");
  if (!st) return std::move(st).error();
  return st->rfind(want_frozen ? "FROZEN" : "THAWED", 0) == 0;
}

Result<void> set(const std::string& dir, bool frozen) {
  auto r = is_v2(dir) ? fs::write_file(dir + "/cgroup.freeze", frozen ? "1" : "0")
                      : fs::write_file(dir + "/freezer.state", frozen ? "FROZEN" : "THAWED");
  if (!r) return std::move(r).error().with_context("freezer " + dir);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto done = reached(dir, frozen);
    if (!done) return std::move(done).error().with_context("freezer " + dir);
    if (*done) return ok();
    if (std::chrono::steady_clock::now() > deadline)
      return Error::make(ErrorKind::System, "freezer " + dir + ": not " + (frozen ? "frozen" : "thawed") + " after 10 s");
    // v1 may stay in FREEZING when a task is in an uninterruptible state: ask again.
    if (frozen && !is_v2(dir)) (void)fs::write_file(dir + "/freezer.state", "FROZEN");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

}  // namespace

Freezer::~Freezer() {
  if (frozen_) (void)thaw();
}

Result<void> Freezer::freeze() {
  if (dir_.empty()) return ok();
  ENVRUN_CHECK(set(dir_, true));
  frozen_ = true;
  return ok();
}

Result<void> Freezer::thaw() {
  if (dir_.empty() || !frozen_) return ok();
  frozen_ = false;
  return set(dir_, false);
}

}  // namespace envrun::ckpt
