// The page server's loop (lazy_server.hpp); its process and watchdog: lazy_spawn.cpp.
#include "ckpt/lazy_server.hpp"

#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>

#include "ckpt/clock.hpp"
#include "ckpt/lazy_watchdog.hpp"
#include "ckpt/proc_read.hpp"
#include "kernel/log.hpp"
#include "kernel/process.hpp"

namespace envrun::ckpt {

namespace {

constexpr uint64_t kPage = 4096;

std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

}  // namespace

void kill_lazy_tree(pid_t root) {
  std::vector<UniqueFd> fds;
  for (pid_t p : proc::tree(root)) {
    auto fd = envrun::proc::pidfd_open(p);
    if (!fd) continue;
    (void)envrun::proc::pidfd_signal(fd->get(), SIGKILL);
    fds.push_back(std::move(*fd));
  }
  for (auto& fd : fds) (void)envrun::proc::wait_exit(fd.get(), 10000);
}

class LazyServer {
 public:
  explicit LazyServer(LazyServerSetup& s) : s_(s) {
    if (const char* e = std::getenv("ENVRUN_LAZY_TEST_SKIP")) skip_every_ = std::strtoull(e, nullptr, 10);
    if (const char* e = std::getenv("ENVRUN_LAZY_TEST_DELAY_US")) delay_us_ = std::strtoull(e, nullptr, 10);
  }
  Result<LazyServerStats> run();

 private:
  struct Fault {
    size_t target;
    uint64_t addr;
  };
  struct Owned {  // a chunk kept for another try (the kernel said EAGAIN)
    uint64_t pid, addr;
    std::vector<uint8_t> data;
  };
  bool all_in() const {
    for (const auto& t : s_.targets)
      if (t.uffd && !t.want.empty()) return false;
    return true;
  }
  Result<void> read_events(size_t i);
  Result<void> on_event(size_t i, const uffd_msg& m);
  Result<void> resolve_faults();
  Result<void> deliver(const PageChunk& c, bool background);
  Result<bool> copy(size_t i, uint64_t dst, const uint8_t* src, uint64_t len);
  void drop(size_t i, const char* why) {
    log::debug("lazy pages: pid " + std::to_string(s_.targets[i].host_pid) + ": " + why + ": no more pages for it");
    s_.targets[i].uffd.reset();
    s_.targets[i].want = LazyExtents();  // a shell forking thousands of children keeps no copies
  }

  LazyServerSetup& s_;
  LazyServerStats st_;
  std::vector<Fault> faults_;
  std::deque<Owned> retry_;
  bool again_ = false;  // a copy was refused for the moment: read the events first
  uint64_t skip_every_ = 0;
  uint64_t delay_us_ = 0;
};

Result<void> LazyServer::on_event(size_t i, const uffd_msg& m) {
  auto& t = s_.targets[i];
  switch (m.event) {
    case UFFD_EVENT_PAGEFAULT: {
      ++st_.faults;
      uint64_t addr = m.arg.pagefault.address & ~(kPage - 1);
      if (auto src = t.want.source(addr)) ENVRUN_CHECK(s_.source->request(src->pid, src->addr));
      faults_.push_back({i, addr});
      return ok();
    }
    case UFFD_EVENT_FORK: {
      LazyTarget child;
      child.uffd.reset(int(m.arg.fork.ufd));
      child.image_pid = t.image_pid;
      child.want = t.want;
      lazy_watchdog_hold(child.uffd.get());
      log::debug("lazy pages: pid " + std::to_string(t.host_pid) + " forked: its child wants " +
                 std::to_string(child.want.pages()) + " pages too");
      s_.targets.push_back(std::move(child));  // t is invalid from here
      return ok();
    }
    case UFFD_EVENT_REMAP:
      t.want.remap(m.arg.remap.from, m.arg.remap.to, m.arg.remap.len);
      return ok();
    case UFFD_EVENT_REMOVE:
    case UFFD_EVENT_UNMAP:
      t.want.remove(m.arg.remove.start & ~(kPage - 1), (m.arg.remove.end + kPage - 1) & ~(kPage - 1));
      return ok();
    default:
      return Error::make(ErrorKind::System, "lazy pages: userfaultfd event " + std::to_string(m.event) + " not understood");
  }
}

Result<void> LazyServer::read_events(size_t i) {
  uffd_msg msgs[64];
  while (s_.targets[i].uffd) {
    ssize_t n = ::read(s_.targets[i].uffd.get(), msgs, sizeof msgs);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return ok();
    if (n <= 0) return Error::sys("lazy pages: pid " + std::to_string(s_.targets[i].host_pid) + ": read userfaultfd");
    for (size_t k = 0; k < size_t(n) / sizeof(uffd_msg); ++k) ENVRUN_CHECK(on_event(i, msgs[k]));
  }
  return ok();
}

// One UFFDIO_COPY of [dst, dst + len), waking whoever faulted there. False: refused
// for the moment (an event is pending), the caller keeps the bytes for another try.
Result<bool> LazyServer::copy(size_t i, uint64_t dst, const uint8_t* src, uint64_t len) {
  auto& t = s_.targets[i];
  for (uint64_t done = 0; done < len && t.uffd;) {
    uffdio_copy c{};
    c.dst = dst + done;
    c.src = reinterpret_cast<uint64_t>(src + done);
    c.len = len - done;
    int rc = ::ioctl(t.uffd.get(), UFFDIO_COPY, &c);
    int e = errno;
    if (c.copy > 0) {
      t.want.remove(c.dst, c.dst + uint64_t(c.copy));
      st_.pages_copied += uint64_t(c.copy) / kPage;
      done += uint64_t(c.copy);
    }
    if (rc == 0) return true;
    if (c.copy > 0 && e == EAGAIN) continue;
    if (e == EAGAIN || e == EINTR) return false;
    if (e == EEXIST) {  // present already (a racing event): nothing to put there
      t.want.remove(dst + done, dst + done + kPage);
      done += kPage;
      continue;
    }
    if (e == ESRCH) return drop(i, "gone (exited or exec'd)"), true;
    if (e == ENOENT || e == EINVAL) {  // no longer mapped there (the event follows)
      t.want.remove(dst + done, dst + len);
      return true;
    }
    return Error::sys("lazy pages: pid " + std::to_string(t.host_pid) + ": UFFDIO_COPY at " + hex(c.dst), e);
  }
  return true;
}

Result<void> LazyServer::deliver(const PageChunk& c, bool background) {
  ++st_.chunks;
  if (delay_us_) ::usleep(useconds_t(delay_us_));
  bool skip = background && skip_every_ && st_.chunks % skip_every_ == 0;
  for (size_t i = 0; i < s_.targets.size(); ++i) {
    if (!s_.targets[i].uffd) continue;
    for (const auto& h : s_.targets[i].want.wanted(c.pid, c.addr, c.data.size())) {
      if (skip) {  // the test hook: claimed in, never copied
        s_.targets[i].want.remove(h.addr, h.addr + h.bytes);
        continue;
      }
      if (!ENVRUN_TRY(copy(i, h.addr, c.data.data() + h.src_off, h.bytes))) {
        retry_.push_back({c.pid, c.addr + h.src_off, {c.data.begin() + long(h.src_off), c.data.begin() + long(h.src_off + h.bytes)}});
        again_ = true;
      }
    }
  }
  return ok();
}

// Faults whose page no source will bring (none held it, or it was dropped since): a
// zero page; those whose page came in meanwhile: woken.
Result<void> LazyServer::resolve_faults() {
  for (size_t k = 0; k < faults_.size();) {
    auto& t = s_.targets[faults_[k].target];
    uint64_t addr = faults_[k].addr;
    if (t.uffd && t.want.source(addr)) {
      ++k;
      continue;
    }
    bool settled = true;
    if (t.uffd) {
      uffdio_zeropage z{};
      z.range = {addr, kPage};
      if (::ioctl(t.uffd.get(), UFFDIO_ZEROPAGE, &z) == 0) {
        ++st_.zero_pages;
      } else if (errno == EEXIST) {
        uffdio_range r{addr, kPage};
        (void)::ioctl(t.uffd.get(), UFFDIO_WAKE, &r);
      } else if (errno == EAGAIN) {
        settled = false, again_ = true;
      } else if (errno != ESRCH && errno != ENOENT) {
        return Error::sys("lazy pages: pid " + std::to_string(t.host_pid) + ": UFFDIO_ZEROPAGE at " + hex(addr));
      }
    }
    if (settled) faults_.erase(faults_.begin() + long(k));
    else ++k;
  }
  return ok();
}

Result<LazyServerStats> LazyServer::run() {
  uint64_t t0 = now_us();
  std::vector<pollfd> pfds;
  while (!all_in()) {
    bool got = false;
    if (!again_ && !retry_.empty()) {
      Owned o = std::move(retry_.front());
      retry_.pop_front();
      ENVRUN_CHECK(deliver({o.pid, o.addr, o.data}, false));
      got = true;
    } else if (!again_) {
      bool asked = !faults_.empty();
      auto c = ENVRUN_TRY(s_.source->next());
      if (c) {
        ENVRUN_CHECK(deliver(*c, !asked));
        got = true;
      }
    }
    ENVRUN_CHECK(resolve_faults());
    if (!got && !again_ && s_.source->done() && retry_.empty() && faults_.empty() && !all_in()) {
      uint64_t left = 0;
      for (const auto& t : s_.targets) left += t.uffd ? t.want.pages() : 0;
      return Error::make(ErrorKind::System, "lazy pages: the source gave out everything but " + std::to_string(left) +
                                                " pages are still missing");
    }
    pfds.clear();
    for (const auto& t : s_.targets) pfds.push_back({t.uffd ? t.uffd.get() : -1, POLLIN, 0});
    if (s_.source->poll_fd() >= 0) pfds.push_back({s_.source->poll_fd(), POLLIN, 0});
    int timeout = (got || again_) ? 0 : (faults_.empty() ? 1000 : 50);
    if (again_) timeout = 1;
    int n = ::poll(pfds.data(), pfds.size(), timeout);
    if (n < 0 && errno != EINTR) return Error::sys("lazy pages: poll");
    again_ = false;
    for (size_t i = 0; n > 0 && i < s_.targets.size() && i < pfds.size(); ++i)
      if (pfds[i].revents & POLLIN) ENVRUN_CHECK(read_events(i));
  }
  st_.all_in_us = now_us() - t0;
  for (auto& t : s_.targets) t.uffd.reset();
  s_.source->finished();
  return st_;
}

Result<LazyServerStats> run_lazy_server(LazyServerSetup& s) {
  LazyServer server(s);
  auto r = server.run();
  if (!r) {
    log::error(r.error().message + ": killing the restored tree (root pid " + std::to_string(s.root) + ")");
    kill_lazy_tree(s.root);
    for (auto& t : s.targets) t.uffd.reset();
  }
  return r;
}

}  // namespace envrun::ckpt
