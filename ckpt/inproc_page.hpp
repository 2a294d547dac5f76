// The engine's handle on an instance's control page (intercept/control.h) for the
// in-process checkpoint handshake: mapped MAP_SHARED, held under flock(LOCK_EX) so that one
// engine at a time talks to the processes. Internal to envrun_ckpt (inproc*.cpp).
#pragma once
#include <cstdint>
#include <string>

#include "intercept/control.h"
#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt::inproc_detail {

// The instance's intercept.db: next to its control page (runtime/intercept_control.hpp).
std::string db_next_to(const std::string& ctl_path);

class ControlPageMap {
 public:
  // Opens and maps path, checks magic and version, waits (bounded) for the lock.
  static Result<ControlPageMap> open(const std::string& path);
  ControlPageMap(ControlPageMap&& o) noexcept;
  ControlPageMap& operator=(ControlPageMap&&) = delete;
  ~ControlPageMap();

  std::atomic<uint64_t>& word(uint32_t i) const { return page_->barrier[i]; }
  const std::string& path() const { return path_; }
  // FUTEX_WAKE every waiter on a word (any process mapping the page).
  void wake(uint32_t i) const;
  // Wait until the acks word holds `tag` with a count >= want, for at most timeout_ms.
  // Returns the count reached (lower when the time ran out).
  uint32_t wait_acks(uint32_t tag, uint32_t want, int timeout_ms) const;

 private:
  ControlPageMap(std::string path, UniqueFd fd, ictl::ControlPage* page)
      : path_(std::move(path)), fd_(std::move(fd)), page_(page) {}
  std::string path_;
  UniqueFd fd_;
  ictl::ControlPage* page_ = nullptr;
};

}  // namespace envrun::ckpt::inproc_detail
