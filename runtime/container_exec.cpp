// exec: run a new process inside a created or running container.
//
// envrun -> (clone) joiner: setns(pidfd of the init, the container's namespaces)
//   joiner -> (clone, CLONE_PARENT) process: a child of envrun inside the pid namespace.
// The joiner reports the process's pid and exits; envrun moves the process into the
// container's cgroup and sends Go; the process sets itself up and execs. Its end of
// the sync channel is close-on-exec: EOF tells envrun the exec happened.
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "kernel/process.hpp"
#include "runtime/container.hpp"
#include "runtime/container_internal.hpp"
#include "runtime/init.hpp"
#include "runtime/intercept_setup.hpp"
#include "runtime/security.hpp"
#include "runtime/sync.hpp"
#include "runtime/terminal.hpp"

namespace envrun::runtime {
namespace {

oci::Process build_process(const oci::Spec& spec, const ExecOptions& opt) {
  if (opt.process) return *opt.process;
  oci::Process p = *spec.process;
  p.args = opt.args;
  p.terminal = opt.tty;
  for (auto& kv : opt.env) {
    auto key = kv.substr(0, kv.find('=') + 1);
    std::erase_if(p.env, [&](const std::string& e) { return e.rfind(key, 0) == 0; });
    p.env.push_back(kv);
  }
  if (!opt.cwd.empty()) p.cwd = opt.cwd;
  if (opt.user) {
    p.user.uid = opt.user->first;
    p.user.gid = opt.user->second;
  }
  if (!opt.additional_gids.empty()) p.user.additional_gids = opt.additional_gids;
  if (!opt.caps.empty()) {
    if (!p.capabilities) p.capabilities = oci::Capabilities{};
    for (auto* set : {&p.capabilities->bounding, &p.capabilities->effective, &p.capabilities->permitted,
                      &p.capabilities->inheritable, &p.capabilities->ambient})
      set->insert(set->end(), opt.caps.begin(), opt.caps.end());
  }
  if (opt.no_new_privs) p.no_new_privileges = true;
  return p;
}

int ns_flags_of(const oci::Spec& spec) {
  int flags = 0;
  if (!spec.linux) return 0;
  for (auto& ns : spec.linux->namespaces) {
    if (ns.type == "pid") flags |= CLONE_NEWPID;
    else if (ns.type == "network") flags |= CLONE_NEWNET;
    else if (ns.type == "mount") flags |= CLONE_NEWNS;
    else if (ns.type == "ipc") flags |= CLONE_NEWIPC;
    else if (ns.type == "uts") flags |= CLONE_NEWUTS;
    else if (ns.type == "user") flags |= CLONE_NEWUSER;
    else if (ns.type == "cgroup") flags |= CLONE_NEWCGROUP;
  }
  return flags;
}

struct ExecPlan {
  const oci::Spec* spec;
  oci::Process process;
  int pidfd;
  pid_t init_pid;
  int ns_flags;
  int console_fd;
  int preserve_fds;
  std::string host_exe, host_cwd;  // isolation intercept: resolved through the rules
};

[[noreturn]] void exec_process(const ExecPlan& plan, const SyncChannel& ch) {
  auto fail = [&](const Error& e) {
    std::string payload(1, char(int(e.kind) + '0'));
    (void)ch.send(SyncMsg::Error, payload + e.message);
    ::_exit(127);
  };
  std::string unused;
  auto go = ch.recv(&unused);
  if (!go || *go != SyncMsg::Go) ::_exit(1);
  const oci::Process& p = plan.process;
  if (p.terminal) {
    ::setsid();
    auto r = setup_console(plan.console_fd, p.console_size);
    if (!r) fail(r.error());
  }
  const std::string& cwd = plan.host_cwd.empty() ? p.cwd : plan.host_cwd;
  if (::chdir(cwd.c_str()) != 0)
    fail(Error::make(ErrorKind::Exec, "cwd " + p.cwd + ": " + std::strerror(errno)));
  auto exe = plan.host_exe.empty() ? find_executable(p.args[0], p.env) : Result<std::string>(plan.host_exe);
  if (!exe) fail(exe.error());
  std::vector<std::string> warnings;
  auto r = apply_process_security(p, plan.spec->linux ? plan.spec->linux->seccomp : std::nullopt, &warnings);
  if (!r) fail(r.error());
  for (auto& w : warnings) log::warn(w);
  std::vector<std::string> args = p.args, env = p.env;
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  for (auto& e : env) envp.push_back(e.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  close_fds_except(plan.preserve_fds, {ch.fd()});
  ::execve(exe->c_str(), argv.data(), envp.data());
  fail(Error::make(ErrorKind::Exec, "exec " + p.args[0] + ": " + std::strerror(errno)));
  ::_exit(127);
}

[[noreturn]] void joiner(const ExecPlan& plan, const SyncChannel& ch) {
  auto fail = [&](const std::string& msg) {
    (void)ch.send(SyncMsg::Error, std::string(1, char(int(ErrorKind::System) + '0')) + msg);
    ::_exit(1);
  };
  if (!(plan.ns_flags & CLONE_NEWNS) && plan.host_cwd.empty()) {
    std::string root = "/proc/" + std::to_string(plan.init_pid) + "/root";
    if (::chroot(root.c_str()) != 0 || ::chdir("/") != 0) fail("chroot into the container: " + std::string(std::strerror(errno)));
  }
  if (plan.ns_flags && ::setns(plan.pidfd, plan.ns_flags) != 0)
    fail("setns into the container's namespaces: " + std::string(std::strerror(errno)));
  auto child = proc::clone3_fork(CLONE_PARENT, false);
  if (!child) fail(child.error().message);
  if (child->pid == 0) exec_process(plan, ch);
  (void)ch.send(SyncMsg::Ready, std::to_string(child->pid));
  ::_exit(0);
}

// Drives the joiner and the process until the exec; returns the process's pid.
Result<pid_t> launch(const ExecPlan& plan, CgroupManager& cg) {
  auto [parent_ch, child_ch] = ENVRUN_TRY(SyncChannel::make_pair());
  auto j = ENVRUN_TRY(proc::clone3_fork(0, false));
  if (j.pid == 0) joiner(plan, child_ch);
  child_ch.close();
  std::string payload;
  auto msg = parent_ch.recv(&payload);
  while (::waitpid(j.pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (!msg) return Error::make(ErrorKind::System, "exec: the joining process died");
  if (*msg == SyncMsg::Error) return Error::make(ErrorKind(payload[0] - '0'), payload.substr(1));
  pid_t pid = std::stoi(payload);
  auto added = cg.add_process(pid);
  if (added) added = parent_ch.send(SyncMsg::Go);
  if (!added) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return std::move(added).error();
  }
  msg = parent_ch.recv(&payload);
  if (msg && *msg == SyncMsg::Error) {
    ::waitpid(pid, nullptr, 0);
    return Error::make(ErrorKind(payload[0] - '0'), payload.substr(1));
  }
  return pid;
}

}  // namespace

Result<int> exec_in_container(const StateStore& store, const ExecOptions& opt) {
  auto st = ENVRUN_TRY(load_in_status(store, opt.id, {Status::Created, Status::Running}, "exec in"));
  auto spec = ENVRUN_TRY(container_spec(store, st));
  ExecPlan plan{&spec, build_process(spec, opt), -1, st.pid, ns_flags_of(spec), -1, opt.preserve_fds};
  if (plan.process.args.empty()) return Error::make(ErrorKind::Usage, "exec: no command given");
  if (spec.envrun.isolation != "namespaces") {
    auto ip = ENVRUN_TRY(plan_exec_interception(spec, plan.process, st.rootfs, store.dir(st.id)));
    plan.process.env = ip.env;
    plan.host_exe = ip.exe;
    plan.host_cwd = ip.cwd;
    if (spec.envrun.isolation == "intercept") {
      plan.ns_flags = 0;  // the host's namespaces and root
      if (::geteuid() != 0) {  // as create does without root: the caller's user, no capabilities
        plan.process.user = oci::User{};
        plan.process.user.uid = ::geteuid();
        plan.process.user.gid = ::getegid();
        plan.process.capabilities.reset();
        if (spec.linux && spec.linux->seccomp) plan.process.no_new_privileges = true;
      }
    }
  }
  auto pidfd = ENVRUN_TRY(proc::pidfd_open(st.pid));
  plan.pidfd = pidfd.get();
  auto cg = ENVRUN_TRY(cgroup_of(st));

  UniqueFd console, console_peer;
  if (plan.process.terminal) {
    if (!opt.console_socket.empty()) {
      console = ENVRUN_TRY(connect_console_socket(opt.console_socket));
    } else if (!opt.detach) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Error::sys("socketpair");
      console = UniqueFd(sv[0]);
      console_peer = UniqueFd(sv[1]);
    } else {
      return Error::make(ErrorKind::Usage, "exec: --tty with --detach needs --console-socket");
    }
  }
  plan.console_fd = console.get();
  pid_t pid = ENVRUN_TRY(launch(plan, *cg));
  console.reset();
  if (!opt.pid_file.empty()) {
    auto r = fs::atomic_write(opt.pid_file, std::to_string(pid), 0644, /*durable=*/false);
    if (!r) return std::move(r).error().with_context("--pid-file");
  }
  if (opt.detach) return 0;
  int master = -1;
  if (console_peer) {
    UniqueFd m;
    std::string name;
    SyncChannel peer{std::move(console_peer)};
    (void)peer.recv(&name, &m);
    master = m.release();
  }
  return wait_container(pid, master);
}

}  // namespace envrun::runtime
