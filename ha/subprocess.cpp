// Child::spawn with posix_spawn (file actions for the fd map), waits on a pidfd.
#include "ha/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <utility>

extern char** environ;

namespace envrun::ha {

Result<Child> Child::spawn(const SpawnSpec& s) {
  int errp[2];
  if (::pipe2(errp, O_CLOEXEC) < 0) return Error::sys("pipe");
  UniqueFd err_r(errp[0]), err_w(errp[1]);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawnattr_init(&at);
  ::posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  ::posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  // Sources first moved above every target so that no dup2 overwrites a later source.
  std::vector<UniqueFd> high;
  for (const auto& [ours, theirs] : s.fds) {
    int h = ::fcntl(ours, F_DUPFD_CLOEXEC, 100);
    if (h < 0) return Error::sys("fcntl F_DUPFD");
    high.emplace_back(h);
    ::posix_spawn_file_actions_adddup2(&fa, h, theirs);
  }
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGCHLD}) sigaddset(&defaults, sig);
  ::posix_spawnattr_setsigmask(&at, &none);
  ::posix_spawnattr_setsigdefault(&at, &defaults);
  ::posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv;
  for (const auto& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Child c;
  int rc = ::posix_spawn(&c.pid_, s.argv[0].c_str(), &fa, &at, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&at);
  if (rc != 0) return Error::sys("spawn " + s.argv[0], rc);
  c.pidfd_.reset(int(::syscall(SYS_pidfd_open, c.pid_, 0)));
  if (!c.pidfd_) return Error::sys("pidfd_open");
  ::fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
  c.err_fd_ = std::move(err_r);
  return c;
}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
    err_fd_ = std::move(o.err_fd_);
    err_ = std::move(o.err_);
    reaped_ = o.reaped_;
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

Result<int> Child::wait(int tick_ms, const std::function<void()>& tick, int cancel_fd) {
  auto drain = [&] {
    char buf[4096];
    ssize_t n;
    while (err_fd_ && (n = ::read(err_fd_.get(), buf, sizeof buf)) > 0)
      if (err_.size() < 65536) err_.append(buf, size_t(n));
    if (err_fd_ && n == 0) err_fd_.reset();
  };
  auto next_tick = std::chrono::steady_clock::now() + std::chrono::milliseconds(tick_ms);
  for (;;) {
    pollfd p[3] = {{pidfd_.get(), POLLIN, 0}, {err_fd_ ? err_fd_.get() : -1, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - std::chrono::steady_clock::now()).count();
    int n = ::poll(p, 3, int(std::max<long long>(left, 0)));
    if (n < 0 && errno != EINTR) return Error::sys("poll");
    if (p[1].revents) drain();
    if (cancel_fd >= 0 && (p[2].revents & POLLIN)) return Error::make(ErrorKind::Generic, "cancelled");
    if (p[0].revents) break;
    if (std::chrono::steady_clock::now() >= next_tick) {
      if (tick) tick();
      next_tick = std::chrono::steady_clock::now() + std::chrono::milliseconds(tick_ms);
    }
  }
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  drain();  // what is left (a grandchild holding the pipe does not block us)
  while (!err_.empty() && (err_.back() == '\n' || err_.back() == ' ')) err_.pop_back();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Child::failure_text(int status) const {
  std::string text = err_;
  const std::string prefix = "envrun: ";
  for (size_t pos; (pos = text.find(prefix)) != std::string::npos;) text.erase(pos, prefix.size());
  for (char& c : text)
    if (c == '\n') c = ';';
  return text.empty() ? "exit status " + std::to_string(status) : text;
}

}  // namespace envrun::ha
