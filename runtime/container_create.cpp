// create: the parent side. Clones the init into its namespaces, maps ids, joins the
// cgroup, runs the runtime-namespace hooks and records the state once the init is Ready.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "bundle/spec_parser.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "kernel/process.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/container.hpp"
#include "runtime/container_internal.hpp"
#include "runtime/hooks.hpp"
#include "runtime/init.hpp"
#include "runtime/intercept_setup.hpp"
#include "runtime/terminal.hpp"

namespace envrun::runtime {
namespace {

int ns_flag(const std::string& type) {
  if (type == "pid") return CLONE_NEWPID;
  if (type == "network") return CLONE_NEWNET;
  if (type == "mount") return CLONE_NEWNS;
  if (type == "ipc") return CLONE_NEWIPC;
  if (type == "uts") return CLONE_NEWUTS;
  if (type == "user") return CLONE_NEWUSER;
  if (type == "cgroup") return CLONE_NEWCGROUP;
  if (type == "time") return CLONE_NEWTIME;
  return 0;
}

// Everything `create` made so far; undone on failure.
struct CreateGuard {
  std::string state_dir;
  std::unique_ptr<CgroupManager> cgroup;
  pid_t child = -1;
  bool committed = false;
  ~CreateGuard() {
    if (committed) return;
    if (child > 0) {
      ::kill(child, SIGKILL);
      while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (cgroup) (void)cgroup->destroy();
    if (!state_dir.empty()) (void)fs::remove_tree(state_dir);
  }
};

Result<std::string> absolute(const std::string& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (!r) return Error::make(ErrorKind::Config, "bundle " + p + ": " + std::strerror(errno));
  std::string out(r);
  std::free(r);
  return out;
}

// Listening socket at <state_dir>/start.sock; bound through /proc/self/fd so that long
// state paths do not hit the 108-byte sun_path limit.
Result<UniqueFd> make_start_socket(const std::string& state_dir) {
  UniqueFd dir(::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return Error::sys("open " + state_dir);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return Error::sys("socket");
  auto addr = unix_addr_in(dir.get(), "start.sock");
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return Error::sys("bind start.sock");
  if (::listen(s.get(), 1) != 0) return Error::sys("listen start.sock");
  return s;
}

Result<void> write_id_maps(pid_t pid, const oci::Linux& lx) {
  auto fmt = [](const std::vector<oci::IdMapping>& m) {
    std::string s;
    for (auto& e : m)
      s += std::to_string(e.container_id) + " " + std::to_string(e.host_id) + " " + std::to_string(e.size) + "\n";
    return s;
  };
  std::string base = "/proc/" + std::to_string(pid);
  auto r = fs::write_file(base + "/uid_map", fmt(lx.uid_mappings));
  if (!r) return std::move(r).error().with_context("linux.uidMappings");
  r = fs::write_file(base + "/gid_map", fmt(lx.gid_mappings));
  if (!r) return std::move(r).error().with_context("linux.gidMappings");
  return ok();
}

struct NamespacePlan {
  uint64_t clone_flags = 0;
  unsigned long unshare_flags = 0;
  std::vector<std::pair<int, std::string>> paths;  // to join in the child (pid: in the parent)
  std::string pid_path;
  bool new_user = false, mount = false, cgroup = false, pid = false, new_net = false;
};

NamespacePlan plan_namespaces(const oci::Spec& spec) {
  NamespacePlan p;
  if (!spec.linux) return p;
  bool joins_user = false;
  for (auto& ns : spec.linux->namespaces) joins_user |= (ns.type == "user" && !ns.path.empty());
  for (auto& ns : spec.linux->namespaces) {
    int f = ns_flag(ns.type);
    if (f == CLONE_NEWNS) p.mount = true;
    if (f == CLONE_NEWPID) p.pid = true;
    if (f == CLONE_NEWCGROUP) p.cgroup = true;
    if (!ns.path.empty()) {
      if (f == CLONE_NEWPID) p.pid_path = ns.path;
      else p.paths.emplace_back(f, ns.path);
      continue;
    }
    if (f == CLONE_NEWUSER) p.new_user = true;
    if (f == CLONE_NEWNET) p.new_net = true;
    // The cgroup namespace is made after the init has joined its cgroup; with a joined
    // user namespace the others are made after joining it, so that it owns them.
    // A time namespace is made with unshare so that its offsets can be set before the
    // user process enters it at exec.
    if (f == CLONE_NEWCGROUP || f == CLONE_NEWTIME || (joins_user && f != CLONE_NEWPID))
      p.unshare_flags |= unsigned(f);
    else p.clone_flags |= uint64_t(f);
  }
  return p;
}

// Runs the init's side of the protocol until Ready; runs the runtime-namespace hooks.
Result<void> drive_init(const SyncChannel& ch, const oci::Spec& spec, ContainerState& st) {
  for (;;) {
    std::string payload;
    auto msg = ch.recv(&payload);
    if (!msg) {
      if (msg.error().sys_errno == EPIPE)
        return Error::make(ErrorKind::Generic, "container init exited during set-up");
      return std::move(msg).error();
    }
    if (*msg == SyncMsg::Ready) return ok();
    if (*msg == SyncMsg::Error) {
      ErrorKind kind = payload.empty() ? ErrorKind::Generic : ErrorKind(payload[0] - '0');
      return Error::make(kind, payload.size() > 1 ? payload.substr(1) : "container init failed");
    }
    if (*msg == SyncMsg::Hooks) {
      std::string state_json = oci_state_json(st, Status::Creating).dump();
      ENVRUN_CHECK(run_hooks(spec.hooks.prestart, "prestart", state_json));
      ENVRUN_CHECK(run_hooks(spec.hooks.create_runtime, "createRuntime", state_json));
      ENVRUN_CHECK(ch.send(SyncMsg::HooksDone, state_json));
    }
  }
}

// Like runc, the devices every container may use are allowed after the spec's own rules:
// mknod of anything, the standard nodes, the pty multiplexer and ptys, tun, and the
// devices the spec asks to create.
oci::Resources with_default_devices(oci::Resources r, const oci::Linux& lx) {
  auto allow = [&r](const char* type, std::optional<int64_t> major, std::optional<int64_t> minor, const char* access) {
    oci::DeviceCgroupRule rule;
    rule.allow = true;
    rule.type = type;
    rule.major = major;
    rule.minor = minor;
    rule.access = access;
    r.devices.push_back(rule);
  };
  if (r.devices.empty()) return r;  // no rules: the device cgroup stays open
  allow("c", std::nullopt, std::nullopt, "m");
  allow("b", std::nullopt, std::nullopt, "m");
  for (auto [maj, min] : {std::pair{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {10, 200}})
    allow("c", maj, min, "rwm");
  allow("c", 136, std::nullopt, "rwm");
  for (auto& d : lx.devices)
    allow(d.type == "b" ? "b" : "c", d.major, d.minor, "rwm");
  return r;
}

// Fields envrun reads and validates but does not apply yet: said once per create, not ignored silently.
void warn_unapplied(const oci::Spec& spec) {
  std::vector<std::string> names;
  if (spec.process->scheduler) names.push_back("process.scheduler");
  if (spec.process->io_priority) names.push_back("process.ioPriority");
  if (spec.process->exec_cpu_affinity) names.push_back("process.execCPUAffinity");
  for (size_t i = 0; i < spec.mounts.size(); ++i)
    if (!spec.mounts[i].uid_mappings_raw.empty()) names.push_back("mounts[" + std::to_string(i) + "].uidMappings (idmapped mount)");
  if (spec.linux) {
    if (spec.linux->personality) names.push_back("linux.personality");
    if (!spec.linux->net_devices.empty()) names.push_back("linux.netDevices");
    if (spec.linux->resources && spec.linux->resources->network) names.push_back("linux.resources.network");
    if (spec.linux->resources && !spec.linux->resources->rdma.empty()) names.push_back("linux.resources.rdma");
  }
  if (names.empty()) return;
  std::string list;
  for (auto& n : names) list += (list.empty() ? "" : ", ") + n;
  log::warn("config fields accepted but not applied by this envrun version: " + list);
}

Result<std::string> spec_as_json_text(const std::string& bundle) {
  if (fs::exists(bundle + "/config.json")) return fs::read_file(bundle + "/config.json");
  std::string name = fs::exists(bundle + "/config.yaml") ? "config.yaml" : "config.yml";
  auto text = ENVRUN_TRY(fs::read_file(bundle + "/" + name));
  auto j = ENVRUN_TRY(bundle::yaml_to_json(text, name));
  return j.dump();
}

// The spec the init runs for isolation intercept | both: the library preloaded, the env
// rules applied, `both`: the instance's intercept dir mounted; without root (intercept
// mode only) the process keeps the caller's user and gets no capabilities.
Result<oci::Spec> with_interception(const oci::Spec& spec, const InterceptPlan& plan, InitContext& ictx) {
  oci::Spec out = spec;
  out.process->env = plan.env;
  out.mounts.insert(out.mounts.end(), plan.mounts.begin(), plan.mounts.end());
  if (spec.envrun.isolation != "intercept") return out;
  ictx.host_mode = true;
  ictx.host_exe = plan.exe;
  ictx.host_cwd = plan.cwd;
  if (::geteuid() != 0) {
    if (out.process->user.uid != 0 && out.process->user.uid != ::geteuid())
      log::warn("process.user.uid " + std::to_string(out.process->user.uid) + " ignored: without root the process runs as uid " +
                std::to_string(::geteuid()));
    out.process->user = oci::User{};
    out.process->user.uid = ::geteuid();
    out.process->user.gid = ::getegid();
    out.process->user.umask = spec.process->user.umask;
    out.process->capabilities.reset();
    if (out.linux && out.linux->seccomp) out.process->no_new_privileges = true;  // unprivileged seccomp needs it
  }
  return out;
}

}  // namespace

Result<std::string> check_cgroup_root(const std::string& dir) {
  if (dir.empty()) return std::string();
  if (dir[0] != '/') return Error::make(ErrorKind::Usage, "\"" + dir + "\": not an absolute path");
  if (dir.find("/../") != std::string::npos || dir.ends_with("/.."))
    return Error::make(ErrorKind::Usage, "\"" + dir + "\": \"..\" is not allowed");
  std::string n = fs::normalize(dir);
  return n == "/" ? std::string() : n;
}

namespace {

std::string resolve_in_host(const std::string& p, const std::string& id) {
  if (p.empty()) return "/envrun/" + id;
  auto c1 = p.find(':');
  if (p[0] != '/' && c1 != std::string::npos) {  // systemd style "slice:prefix:name"
    auto c2 = p.find(':', c1 + 1);
    std::string slice = p.substr(0, c1);
    std::string prefix = c2 == std::string::npos ? "" : p.substr(c1 + 1, c2 - c1 - 1);
    std::string name = c2 == std::string::npos ? p.substr(c1 + 1) : p.substr(c2 + 1);
    if (slice.empty()) slice = "system.slice";
    return "/" + slice + "/" + (prefix.empty() ? "" : prefix + "-") + name + ".scope";
  }
  if (p[0] == '/') return fs::normalize(p);
  return fs::normalize("/envrun/" + p);
}

}  // namespace

std::string resolve_cgroup_path(const std::string& p, const std::string& id) {
  std::string path = resolve_in_host(p, id);
  const char* env = std::getenv(kCgroupRootEnv);
  auto root = check_cgroup_root(env ? env : "");
  return root && !root->empty() ? fs::normalize(*root + path) : path;
}

Result<Created> create_container(const StateStore& store, const CreateOptions& opt, bool relay_console) {
  ENVRUN_CHECK(StateStore::validate_id(opt.id));
  std::string bundle = ENVRUN_TRY(absolute(opt.bundle.empty() ? "." : opt.bundle));
  log::debug("create " + opt.id + ": loading " + bundle);
  oci::Spec spec = ENVRUN_TRY(bundle::load_spec(bundle));
  if (!spec.process) return Error::make(ErrorKind::Config, "config: process: missing");
  warn_unapplied(spec);

  ENVRUN_CHECK(fs::mkdir_p(store.root(), 0700));
  CreateGuard guard;
  std::string dir = store.dir(opt.id);
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return Error::make(ErrorKind::State, "container \"" + opt.id + "\" already exists");
    return Error::sys("mkdir " + dir);
  }
  guard.state_dir = dir;

  ContainerState st;
  st.id = opt.id;
  st.bundle = bundle;
  st.rootfs = bundle::rootfs_path(spec, bundle);
  st.created = log::now_rfc3339();
  st.owner = proc::user_name(::geteuid());
  st.annotations = spec.annotations;
  st.config_json = ENVRUN_TRY(spec_as_json_text(bundle));
  const std::string& isolation = spec.envrun.isolation;
  bool host_mode = isolation == "intercept";
  // intercept mode: no namespaces; a cgroup only when we may make one (root).
  NamespacePlan ns = host_mode ? NamespacePlan{} : plan_namespaces(spec);
  st.own_pidns = ns.pid && ns.pid_path.empty();
  bool use_cgroup = !host_mode || ::geteuid() == 0;

  auto mounts = ENVRUN_TRY(CgroupMounts::detect());
  if (use_cgroup) st.cgroup_path = resolve_cgroup_path(spec.linux ? spec.linux->cgroups_path : "", opt.id);
  // A placeholder state (pid 0: "creating") names the cgroup, so that `delete --force`
  // can clean up after a create that is killed from here on.
  ENVRUN_CHECK(store.save(st, /*durable=*/false));
  log::debug("create " + opt.id + ": cgroup " + st.cgroup_path);
  std::optional<oci::Resources> res;
  if (spec.linux && spec.linux->resources) res = with_default_devices(*spec.linux->resources, *spec.linux);
  if (use_cgroup) {
    guard.cgroup = CgroupManager::make(mounts, st.cgroup_path, res ? &*res : nullptr);  // joins only what res needs
    ENVRUN_CHECK(guard.cgroup->create());
    if (res) ENVRUN_CHECK(guard.cgroup->apply(*res));
  } else if (res) {
    log::warn("linux.resources ignored: without root, isolation intercept runs without a cgroup");
  }

  InitContext ictx;
  oci::Spec run_spec;
  const oci::Spec* init_spec = &spec;
  if (isolation != "namespaces") {
    auto plan = ENVRUN_TRY(plan_interception(spec, bundle, st.rootfs, opt.id, dir));
    run_spec = ENVRUN_TRY(with_interception(spec, plan, ictx));
    init_spec = &run_spec;
    log::debug("create " + opt.id + ": isolation " + isolation + ", exec " + (host_mode ? plan.exe : spec.process->args[0]));
  }

  UniqueFd console, console_peer;
  if (spec.process->terminal) {
    if (!opt.console_socket.empty()) {
      console = ENVRUN_TRY(connect_console_socket(opt.console_socket));
    } else if (relay_console) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Error::sys("socketpair");
      console = UniqueFd(sv[0]);
      console_peer = UniqueFd(sv[1]);
    }
  }
  UniqueFd start_sock = ENVRUN_TRY(make_start_socket(dir));
  auto [parent_ch, child_ch] = ENVRUN_TRY(SyncChannel::make_pair());

  ictx.spec = init_spec;
  ictx.fs.rootfs = st.rootfs;
  ictx.sync_fd = child_ch.fd();
  ictx.start_listen_fd = start_sock.get();
  ictx.console_fd = console.get();
  ictx.preserve_fds = opt.preserve_fds;
  if (opt.init_replacement) ictx.replacement = &opt.init_replacement;
  ictx.ns_paths = ns.paths;
  ictx.unshare_flags = ns.unshare_flags;
  ictx.new_net = ns.new_net;
  ictx.fs.user_ns = ns.new_user;
  ictx.fs.mount_ns = ns.mount;
  ictx.fs.cgroup_ns = ns.cgroup;
  ictx.fs.no_pivot = opt.no_pivot;
  ictx.fs.cgroup_mounts = &mounts;
  ictx.fs.cgroup_path = st.cgroup_path;
  // Socket activation (like runc): LISTEN_FDS meant for us (LISTEN_PID is our pid) pass
  // on as fds 3..3+N-1, and --preserve-fds adds its fds after them.
  const char* lf = std::getenv("LISTEN_FDS");
  const char* lp = std::getenv("LISTEN_PID");
  if (lf && lp && std::atoi(lp) == ::getpid()) {
    int n = std::atoi(lf);
    if (n > 0) {
      ictx.preserve_fds += n;
      ictx.extra_env = {"LISTEN_FDS=" + std::to_string(n), "LISTEN_PID="};
    }
  }

  // Fast cgroup join (see InitContext::self_join_dirs): born in the unified cgroup,
  // moving itself into the v1 ones.
  bool self_join = !ns.new_user;
  UniqueFd unified_dir;
  if (self_join && guard.cgroup) {
    for (auto& d : guard.cgroup->dirs()) {
      if (!mounts.unified.empty() && d.rfind(mounts.unified + "/", 0) == 0)
        unified_dir = UniqueFd(::open(d.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      else
        ictx.self_join_dirs.push_back(d);
    }
  }
  UniqueFd own_pidns;
  if (!ns.pid_path.empty()) own_pidns = ENVRUN_TRY(join_pid_namespace_for_children(ns.pid_path));
  auto cloned = proc::clone3_fork(ns.clone_flags, false, unified_dir.get());
  if (cloned && cloned->pid == 0) container_init(ictx);  // never returns
  restore_pid_namespace_for_children(own_pidns);
  auto child = ENVRUN_TRY(std::move(cloned));
  guard.child = child.pid;
  log::debug("create " + opt.id + ": init is pid " + std::to_string(child.pid));
  child_ch.close();
  start_sock.reset();
  console.reset();
  st.pid = child.pid;
  st.pid_start = proc::start_time(child.pid).value_or(0);

  if (ns.new_user) ENVRUN_CHECK(write_id_maps(child.pid, *spec.linux));
  // Joining v1 cgroups costs an RCU grace period (milliseconds): let the init set up its
  // mounts meanwhile. It waits for HooksDone, sent only after this, before it can exec;
  // a cgroup namespace must be made after joining, so then the init waits for Go.
  bool early_go = !ns.cgroup || self_join;
  if (early_go) ENVRUN_CHECK(parent_ch.send(SyncMsg::Go));
  if (!self_join && guard.cgroup) ENVRUN_CHECK(guard.cgroup->add_process(child.pid));
  if (spec.process->oom_score_adj) {
    auto r = fs::write_file("/proc/" + std::to_string(child.pid) + "/oom_score_adj",
                            std::to_string(*spec.process->oom_score_adj));
    if (!r) return std::move(r).error().with_context("process.oomScoreAdj");
  }
  log::debug("create " + opt.id + ": joined cgroups");
  if (!early_go) ENVRUN_CHECK(parent_ch.send(SyncMsg::Go));
  ENVRUN_CHECK(drive_init(parent_ch, *init_spec, st));

  log::debug("create " + opt.id + ": init ready");
  Created out;
  if (console_peer) {
    UniqueFd master;
    std::string name;
    SyncChannel peer{std::move(console_peer)};
    (void)peer.recv(&name, &master);
    out.console_master = master.release();
  }
  ENVRUN_CHECK(store.save(st));
  if (!opt.pid_file.empty()) {
    auto r = fs::atomic_write(opt.pid_file, std::to_string(st.pid), 0644, /*durable=*/false);
    if (!r) return std::move(r).error().with_context("--pid-file");
  }
  guard.committed = true;
  log::debug("create " + opt.id + ": state saved");
  out.state = st;
  return out;
}

}  // namespace envrun::runtime
