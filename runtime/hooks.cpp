#include "runtime/hooks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/process.hpp"

namespace envrun::runtime {

static std::vector<char*> cstrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

static Result<void> run_one(const oci::Hook& hook, const std::string& name, const std::string& state) {
  int in[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return Error::sys(name + ": pipe");
  UniqueFd rd(in[0]), wr(in[1]);
  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  auto argv = cstrings(args);
  auto envp = cstrings(hook.env);
  auto child = proc::clone3_fork(0, true);
  if (!child) return std::move(child).error().with_context(name);
  if (child->pid == 0) {
    ::dup2(rd.get(), 0);
    ::execve(hook.path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  rd.reset();
  // The hook may not read its stdin: ignore EPIPE.
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old);
  (void)!::write(wr.get(), state.data(), state.size());
  ::sigaction(SIGPIPE, &old, nullptr);
  wr.reset();
  int timeout_ms = hook.timeout && *hook.timeout > 0 ? *hook.timeout * 1000 : -1;
  bool exited = proc::wait_exit(child->pidfd.get(), timeout_ms);
  if (!exited) {
    (void)proc::pidfd_signal(child->pidfd.get(), SIGKILL);
    ::waitpid(child->pid, nullptr, 0);
    return Error::make(ErrorKind::Generic, name + " " + hook.path + ": timed out after " +
                                               std::to_string(*hook.timeout) + "s");
  }
  int status = 0;
  while (::waitpid(child->pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok();
  std::string why = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                      : "killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) why += " (could not be executed)";
  return Error::make(ErrorKind::Generic, name + " " + hook.path + ": " + why);
}

Result<void> run_hooks(const std::vector<oci::Hook>& hooks, const std::string& phase, const std::string& state) {
  for (size_t i = 0; i < hooks.size(); ++i)
    ENVRUN_CHECK(run_one(hooks[i], "hook " + phase + "[" + std::to_string(i) + "]", state));
  return ok();
}

}  // namespace envrun::runtime
