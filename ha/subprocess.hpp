// Running an envrun command as a child process (the migration runs `envrun checkpoint`
// and `envrun restore` as the user would, so that each gets a process of its own: the
// engine ptraces, forks stubs and exits on errors). The child starts with default
// signal dispositions and an empty signal mask, stdin from /dev/null, stdout discarded,
// stderr captured for the error message.
#pragma once
#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::ha {

struct SpawnSpec {
  std::vector<std::string> argv;          // argv[0] is the program path
  std::vector<std::pair<int, int>> fds;   // (our fd, its number in the child)
};

class Child {
 public:
  static Result<Child> spawn(const SpawnSpec& s);
  Child(Child&& o) noexcept { *this = std::move(o); }
  Child& operator=(Child&& o) noexcept;
  ~Child();  // kills and reaps a child still running
  pid_t pid() const { return pid_; }
  // Waits until the child exits, calling tick() every tick_ms (keep-alives). Returns its
  // exit status (128 + signal when killed). cancel_fd readable: stop waiting (the child
  // is left to the destructor). Its stderr is collected meanwhile (err_text()).
  Result<int> wait(int tick_ms = 1000, const std::function<void()>& tick = {}, int cancel_fd = -1);
  // The child's stderr, trimmed; "" before wait().
  const std::string& err_text() const { return err_; }
  // "exit status N: <stderr>" as one line, for messages.
  std::string failure_text(int status) const;

 private:
  Child() = default;
  pid_t pid_ = -1;
  UniqueFd pidfd_, err_fd_;
  std::string err_;
  bool reaped_ = false;
};

// The path of the running envrun binary (re-executed for checkpoint/restore/delete).
inline const char* self_exe() { return "/proc/self/exe"; }

}  // namespace envrun::ha
