// ControlPageMap (inproc_page.hpp).
#include "ckpt/inproc_page.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <thread>

namespace envrun::ckpt::inproc_detail {

namespace {

constexpr int kLockWaitMs = 10000;

Result<void> lock(int fd, const std::string& path) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kLockWaitMs);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) return Error::sys("flock " + path);
    if (std::chrono::steady_clock::now() >= until)
      return Error::make(ErrorKind::State, path + ": another checkpoint or restore holds the control page");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ok();
}

}  // namespace

std::string db_next_to(const std::string& ctl_path) {
  size_t slash = ctl_path.find_last_of('/');
  return (slash == std::string::npos ? std::string() : ctl_path.substr(0, slash + 1)) + "intercept.db";
}

Result<ControlPageMap> ControlPageMap::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return Error::sys("open " + path);
  struct stat sb;
  if (::fstat(fd.get(), &sb) != 0) return Error::sys("stat " + path);
  if (size_t(sb.st_size) < sizeof(ictl::ControlPage))
    return Error::make(ErrorKind::System, path + ": truncated control page (" + std::to_string(sb.st_size) + " bytes)");
  ENVRUN_CHECK(lock(fd.get(), path));
  void* p = ::mmap(nullptr, sizeof(ictl::ControlPage), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return Error::sys("mmap " + path);
  auto* page = static_cast<ictl::ControlPage*>(p);
  if (std::memcmp(page->magic, ictl::kMagic, sizeof ictl::kMagic) != 0 || page->version != ictl::kVersion) {
    ::munmap(p, sizeof(ictl::ControlPage));
    return Error::make(ErrorKind::System, path + ": not an envrun control page (magic or version)");
  }
  return ControlPageMap(path, std::move(fd), page);
}

ControlPageMap::ControlPageMap(ControlPageMap&& o) noexcept
    : path_(std::move(o.path_)), fd_(std::move(o.fd_)), page_(std::exchange(o.page_, nullptr)) {}

ControlPageMap::~ControlPageMap() {
  if (page_) ::munmap(page_, sizeof(ictl::ControlPage));  // the lock goes with the fd
}

void ControlPageMap::wake(uint32_t i) const {
  ::syscall(SYS_futex, &page_->barrier[i], FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

uint32_t ControlPageMap::wait_acks(uint32_t tag, uint32_t want, int timeout_ms) const {
  auto& acks = word(ictl::kCkptAcks);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    uint64_t v = acks.load(std::memory_order_acquire);
    uint32_t count = uint32_t(v >> 32) == tag ? uint32_t(v) : 0;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    if (count >= want || left <= 0) return count;
    struct timespec ts = {0, long(std::min<long>(left, 50)) * 1000000L};
    ::syscall(SYS_futex, &acks, FUTEX_WAIT, uint32_t(v), &ts, nullptr, 0);
  }
}

}  // namespace envrun::ckpt::inproc_detail
