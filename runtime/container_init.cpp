// The container's init process (child side of create). See init.hpp for the protocol.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "runtime/hooks.hpp"
#include "runtime/init.hpp"
#include "runtime/rootfs.hpp"
#include "runtime/security.hpp"

namespace envrun::runtime {
namespace {

[[noreturn]] void fail(const SyncChannel& ch, const Error& e) {
  std::string payload(1, char(int(e.kind) + '0'));
  payload += e.message;
  (void)ch.send(SyncMsg::Error, payload);
  ::_exit(1);
}

// A new time namespace takes its clock offsets before any process is in it: the init
// made it with unshare (it holds only our future children, and the user process once
// we exec), so the offsets can still be written.
Result<void> set_time_offsets(const oci::Linux& lx) {
  auto line = [](const char* clock, std::optional<int64_t> secs, std::optional<uint32_t> nsecs) {
    if (!secs && !nsecs) return std::string();
    return std::string(clock) + " " + std::to_string(secs.value_or(0)) + " " + std::to_string(nsecs.value_or(0)) + "\n";
  };
  std::string offsets = line("monotonic", lx.time_offsets_monotonic_secs, lx.time_offsets_monotonic_nanosecs) +
                        line("boottime", lx.time_offsets_boottime_secs, lx.time_offsets_boottime_nanosecs);
  if (offsets.empty()) return ok();
  auto r = fs::write_file("/proc/self/timens_offsets", offsets);
  if (!r) return std::move(r).error().with_context("linux.timeOffsets");
  return ok();
}

// A new network namespace has a loopback device that is down; like runc, bring it up
// (127.0.0.1 and ::1 then exist inside).
Result<void> loopback_up() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return Error::sys("new network namespace: socket for lo");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0) return Error::sys("new network namespace: lo flags");
  ifr.ifr_flags = short(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) < 0) return Error::sys("new network namespace: bring lo up");
  return ok();
}

Result<void> join_namespaces(const InitContext& ctx) {
  // A joined user namespace comes first: later namespaces are owned by it.
  for (int pass = 0; pass < 2; ++pass) {
    for (auto& [flag, path] : ctx.ns_paths) {
      if ((flag == CLONE_NEWUSER) != (pass == 0)) continue;
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return Error::make(ErrorKind::Config, "linux.namespaces: " + path + ": " + std::strerror(errno));
      if (::setns(fd.get(), flag) != 0)
        return Error::make(ErrorKind::System, "linux.namespaces: setns " + path + ": " + std::strerror(errno));
    }
  }
  if (ctx.unshare_flags && ::unshare(int(ctx.unshare_flags)) != 0) return Error::sys("unshare namespaces");
  if (ctx.unshare_flags & CLONE_NEWTIME) ENVRUN_CHECK(set_time_offsets(*ctx.spec->linux));
  if (ctx.new_net) ENVRUN_CHECK(loopback_up());
  return ok();
}

Result<void> join_cgroups_self(const std::vector<std::string>& dirs) {
  for (auto& d : dirs) {
    auto r = fs::write_file(d + "/tasks", "0");
    if (!r) return std::move(r).error().with_context("join cgroup " + d);
  }
  return ok();
}

Result<void> become_root_in_userns() {
  if (::setresgid(0, 0, 0) != 0) return Error::sys("setresgid 0 in the user namespace");
  if (::setresuid(0, 0, 0) != 0) return Error::sys("setresuid 0 in the user namespace");
  return ok();
}

Result<void> set_names(const oci::Spec& spec) {
  if (!spec.hostname.empty() && ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0)
    return Error::sys("hostname " + spec.hostname);
  if (!spec.domainname.empty() && ::setdomainname(spec.domainname.data(), spec.domainname.size()) != 0)
    return Error::sys("domainname " + spec.domainname);
  return ok();
}

// Everything between Go and Ready.
Result<std::string> prepare(const InitContext& ctx, const SyncChannel& ch) {
  const oci::Spec& spec = *ctx.spec;
  const oci::Process& proc = *spec.process;
  if (ctx.fs.user_ns) ENVRUN_CHECK(become_root_in_userns());
  ENVRUN_CHECK(join_namespaces(ctx));
  if (::setsid() < 0) return Error::sys("setsid");
  if (!ctx.host_mode) {
    ENVRUN_CHECK(set_names(spec));
    ENVRUN_CHECK(prepare_rootfs(spec, ctx.fs));
  }

  ENVRUN_CHECK(ch.send(SyncMsg::Hooks));
  std::string state_json;
  auto msg = ENVRUN_TRY(ch.recv(&state_json));
  if (msg != SyncMsg::HooksDone) return Error::make(ErrorKind::Generic, "init: unexpected message from envrun");
  ENVRUN_CHECK(run_hooks(spec.hooks.create_container, "createContainer", state_json));

  if (!ctx.host_mode) {
    ENVRUN_CHECK(enter_rootfs(ctx.fs));
    ENVRUN_CHECK(finish_rootfs(spec));
  }

  if (proc.terminal) {
    if (ctx.console_fd < 0)
      return Error::make(ErrorKind::Config, "process.terminal is true but no --console-socket was given");
    ENVRUN_CHECK(setup_console(ctx.console_fd, proc.console_size));
    ::close(ctx.console_fd);
  }
  const std::string& cwd = ctx.host_mode ? ctx.host_cwd : proc.cwd;
  if (::chdir(cwd.c_str()) != 0)
    return Error::make(ErrorKind::Exec, "process.cwd " + proc.cwd + ": " + std::strerror(errno));
  if (ctx.host_mode) return state_json + '\0' + ctx.host_exe;
  std::vector<std::string> env = proc.env;
  env.insert(env.end(), ctx.extra_env.begin(), ctx.extra_env.end());
  auto exe = find_executable(proc.args[0], env);
  if (!exe) return std::move(exe).error();
  return state_json + '\0' + *exe;
}

// Block until `start` connects; returns the connection (close-on-exec).
Result<UniqueFd> wait_for_start(int listen_fd) {
  for (;;) {
    int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) return UniqueFd(c);
    if (errno != EINTR) return Error::sys("accept on the start socket");
  }
}

std::vector<char*> cstrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

[[noreturn]] void report_start_failure(int conn, const Error& e) {
  std::string msg(1, char(int(e.kind) + '0'));
  msg += e.message;
  (void)!::write(conn, msg.data(), msg.size());
  ::_exit(127);
}

}  // namespace

void container_init(const InitContext& ctx) {
  SyncChannel ch{UniqueFd(ctx.sync_fd)};
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // envrun dies before Ready: so do we
  std::string dummy;
  auto go = ch.recv(&dummy);
  if (!go || *go != SyncMsg::Go) ::_exit(1);
  if (auto r = join_cgroups_self(ctx.self_join_dirs); !r) fail(ch, r.error());

  auto prepared = prepare(ctx, ch);
  if (!prepared) fail(ch, prepared.error());
  std::string state_json = prepared->substr(0, prepared->find('\0'));
  std::string exe = prepared->substr(prepared->find('\0') + 1);

  ::prctl(PR_SET_PDEATHSIG, 0);  // from now on we outlive `create`
  if (!ch.send(SyncMsg::Ready)) ::_exit(1);
  ch.close();

  auto conn = wait_for_start(ctx.start_listen_fd);
  if (!conn) ::_exit(1);
  ::close(ctx.start_listen_fd);
  if (ctx.replacement) {  // restore: `start` sees EOF as for an exec; the engine takes over
    conn->reset();
    (*ctx.replacement)();
    ::_exit(127);
  }

  const oci::Spec& spec = *ctx.spec;
  const oci::Process& proc = *spec.process;
  auto hooks = run_hooks(spec.hooks.start_container, "startContainer", state_json);
  if (!hooks) report_start_failure(conn->get(), hooks.error());
  std::vector<std::string> warnings;
  auto sec = apply_process_security(proc, spec.linux ? spec.linux->seccomp : std::nullopt, &warnings);
  if (!sec) report_start_failure(conn->get(), sec.error());
  for (auto& w : warnings) log::warn(w);

  std::vector<std::string> env = proc.env;
  env.insert(env.end(), ctx.extra_env.begin(), ctx.extra_env.end());
  for (auto& e : env)
    if (e == "LISTEN_PID=") e += std::to_string(::getpid());
  std::vector<std::string> args = proc.args;
  auto argv = cstrings(args);
  auto envp = cstrings(env);
  close_fds_except(ctx.preserve_fds, {conn->get()});
  ::execve(exe.c_str(), argv.data(), envp.data());
  report_start_failure(conn->get(), Error::make(ErrorKind::Exec, "exec " + proc.args[0] + ": " + std::strerror(errno)));
}

}  // namespace envrun::runtime
