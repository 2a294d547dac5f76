// The container lifecycle, one operation per file (container_<op>.cpp), on the
// state kept by StateStore. Status gates what may happen next:
//   create: (none) -> created      start: created -> running
//   kill:   created|running|paused  pause/resume: running <-> paused
//   delete: stopped (or anything with force) -> (none)
#pragma once
#include <functional>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/spec.hpp"
#include "kernel/result.hpp"
#include "runtime/state.hpp"

namespace envrun::runtime {

struct CreateOptions {
  std::string id;
  std::string bundle;          // as given; made absolute by create
  std::string console_socket;  // path of a unix socket that receives the pty master
  std::string pid_file;
  int preserve_fds = 0;        // fds 3 .. 3+N-1 pass into the container
  bool no_pivot = false;       // chroot-like MS_MOVE instead of pivot_root
  // Restore (ckpt/): at `start` the init runs this instead of exec'ing process.args. It
  // never returns; it gets the init with the rootfs, namespaces and cgroup set up, but
  // without the process's security settings (the restore engine applies the dumped ones).
  std::function<void()> init_replacement;
};

// What `create` leaves to its caller: the init's pid (a child of the caller).
struct Created {
  ContainerState state;
  int console_master = -1;  // run mode without --console-socket: the pty master to relay (owned by caller)
};

// create: everything up to the point where the init waits for `start`. On failure
// nothing is left behind (no state dir, cgroup, or process). `relay_console`: when the
// process wants a terminal and no console socket was given, keep the pty master
// ourselves (used by foreground `run`).
Result<Created> create_container(const StateStore& store, const CreateOptions& opt, bool relay_console = false);

// start: releases the init (it execs the user process); runs poststart hooks.
Result<void> start_container(const StateStore& store, const std::string& id);

// Foreground `run`: waits for the init (a child of the caller), forwards signals,
// relays the pty if any; returns the exit status (128+signal when killed).
Result<int> wait_container(pid_t pid, int console_master);

Result<void> kill_container(const StateStore& store, const std::string& id, int sig, bool all);
Result<void> delete_container(const StateStore& store, const std::string& id, bool force);
Result<void> pause_container(const StateStore& store, const std::string& id);
Result<void> resume_container(const StateStore& store, const std::string& id);
Result<void> update_container(const StateStore& store, const std::string& id, const oci::Resources& res);
// runc `events --stats` object: {"type":"stats","id":ID,"data":{...}}.
Result<nlohmann::json> container_stats(const StateStore& store, const std::string& id);
// Every pid in the container's cgroup (host pids).
Result<std::vector<pid_t>> container_pids(const StateStore& store, const std::string& id);

struct ExecOptions {
  std::string id;
  std::optional<oci::Process> process;  // --process FILE; else built from the fields below
  std::vector<std::string> args;
  std::vector<std::string> env;         // added to / overriding the container's env
  std::string cwd;
  std::optional<std::pair<uint32_t, uint32_t>> user;
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> caps;        // added to every set
  bool tty = false;
  bool no_new_privs = false;
  bool detach = false;
  std::string console_socket;
  std::string pid_file;
  int preserve_fds = 0;
};
// exec: a new process inside a running container. Foreground: returns its exit status.
Result<int> exec_in_container(const StateStore& store, const ExecOptions& opt);

// The spec recorded in the container's state at create time.
Result<oci::Spec> container_spec(const StateStore& store, const ContainerState& st);

// "/envrun/<id>" by default; absolute cgroupsPath as is; "slice:prefix:name" (systemd
// style, as podman passes it) -> "/slice/prefix-name.scope"; relative -> "/envrun/<path>".
// Under the host's cgroup root (ENVRUN_CGROUP_ROOT, set by `envrun --cgroup-root`), if any.
std::string resolve_cgroup_path(const std::string& cgroups_path, const std::string& id);

// The environment variable that places every new container's cgroup under a path of the
// host's choosing (envrun --cgroup-root; inherited by the processes envrun starts).
inline constexpr const char* kCgroupRootEnv = "ENVRUN_CGROUP_ROOT";
// "" (none), or the normalized absolute path; an Error for a relative path or "..".
Result<std::string> check_cgroup_root(const std::string& dir);

}  // namespace envrun::runtime
