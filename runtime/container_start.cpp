// start: release a created container's init; and the foreground wait of `run`.
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundle/spec_parser.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "runtime/container.hpp"
#include "runtime/container_internal.hpp"
#include "runtime/hooks.hpp"
#include "runtime/terminal.hpp"

namespace envrun::runtime {

Result<oci::Spec> container_spec(const StateStore& store, const ContainerState& st) {
  return bundle::parse_spec_json(st.config_json, store.dir(st.id) + "/state.json: config");
}

// Connect to the init's start socket and read until it closes: EOF means the user
// process was exec'd; anything else is the init's error (kind byte + message).
static Result<void> release_init(const StateStore& store, const std::string& id) {
  UniqueFd dir(::open(store.dir(id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return Error::sys("open " + store.dir(id));
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return Error::sys("socket");
  auto addr = unix_addr_in(dir.get(), "start.sock");
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Error::sys("connect to the container's init");
  std::string reply;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(s.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, size_t(n));
  }
  if (reply.empty()) return ok();
  ErrorKind kind = ErrorKind(reply[0] - '0');
  return Error::make(kind, reply.substr(1));
}

Result<void> start_container(const StateStore& store, const std::string& id) {
  auto st = ENVRUN_TRY(load_in_status(store, id, {Status::Created}, "start"));
  auto spec = ENVRUN_TRY(container_spec(store, st));
  auto released = release_init(store, id);
  ::unlink(store.start_socket_path(id).c_str());  // from now on the status is running (or stopped)
  if (!released) return released;
  log::debug("start " + id + ": process started");
  auto hooks = run_hooks(spec.hooks.poststart, "poststart", oci_state_json(st, Status::Running).dump());
  if (!hooks) log::warn(hooks.error().message);  // the spec: poststart failures are logged, not fatal
  return ok();
}

static int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

Result<int> wait_container(pid_t pid, int console_master) {
  sigset_t set;
  sigfillset(&set);
  for (int s : {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTTIN, SIGTTOU}) sigdelset(&set, s);
  sigset_t old;
  ::sigprocmask(SIG_BLOCK, &set, &old);
  UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!sfd) return Error::sys("signalfd");
  UniqueFd master(console_master);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return Error::sys("waitpid");
    if (master && relay_console(master.get(), sfd.get())) {
      master.reset();  // the process closed its terminal; keep waiting for its exit
      continue;
    }
    struct signalfd_siginfo si;
    ssize_t n = ::read(sfd.get(), &si, sizeof si);
    if (n != sizeof si) continue;
    if (si.ssi_signo == SIGCHLD || si.ssi_signo == SIGWINCH || si.ssi_signo == SIGURG) continue;
    ::kill(pid, int(si.ssi_signo));  // forward to the container's process
  }
  // Reap whatever else was reparented to us.
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  return exit_code(status);
}

}  // namespace envrun::runtime
