// The container's init: the child side of `create`. Internal to runtime/.
//
// Protocol over the sync channel (see sync.hpp):
//   parent -> Go          (uid/gid maps written, cgroup joined)
//   child  -> Hooks       (namespaces and mounts are ready: parent runs prestart/createRuntime)
//   parent -> HooksDone   (payload: the state JSON, for createContainer/startContainer hooks)
//   child  -> Ready | Error(kind byte + message)
// Then the init blocks in accept() on the start socket. `start` connects; the init
// runs startContainer hooks, applies the process's security settings and execs.
// The connection is close-on-exec: `start` reads EOF on success, or an error text.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "bundle/spec.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/rootfs.hpp"
#include "runtime/sync.hpp"

namespace envrun::runtime {

struct InitContext {
  const oci::Spec* spec = nullptr;
  RootfsContext fs;                   // the filesystem view to build (fs.user_ns: a new user namespace)
  int sync_fd = -1;                   // child end of the sync channel
  int start_listen_fd = -1;           // listening unix socket `start` connects to
  int console_fd = -1;                // connected console socket (terminal), or -1
  int preserve_fds = 0;               // fds 3..3+N-1 kept
  std::vector<std::pair<int, std::string>> ns_paths;  // (CLONE_NEW* flag, path) to setns into
  bool new_net = false;               // a new network namespace: its loopback is brought up
  unsigned long unshare_flags = 0;    // namespaces created after clone (cgroup; others when a user ns is joined)
  // v1 cgroup directories the init joins itself, by writing "0" to their `tasks` file:
  // a single thread moving itself skips the kernel's global threadgroup lock, whose
  // first write after a quiet spell waits for an RCU grace period (milliseconds).
  // Empty when the parent moves the init (a new user namespace cannot write there).
  std::vector<std::string> self_join_dirs;
  std::vector<std::string> extra_env;  // LISTEN_FDS etc.
  // envrun.isolation intercept: no namespaces, no rootfs; the process runs in the host's
  // root from `host_cwd`, executing `host_exe` (both resolved through the interception rules).
  bool host_mode = false;
  std::string host_exe, host_cwd;
  const std::function<void()>* replacement = nullptr;  // CreateOptions::init_replacement
};

// Never returns: execs the user process or _exits(1) after reporting the error.
[[noreturn]] void container_init(const InitContext& ctx);

// Set up a pty for the calling process: open a master, send it over `console_fd`
// (runc's console-socket protocol), make the slave the controlling terminal and stdio.
Result<void> setup_console(int console_fd, const std::optional<oci::ConsoleSize>& size);

// Resolve args[0] against PATH from env (as execvp would), in the current root.
Result<std::string> find_executable(const std::string& arg0, const std::vector<std::string>& env);

// Close every fd >= 3 except the first `preserve` ones (3..3+preserve-1) and those listed.
void close_fds_except(int preserve, std::initializer_list<int> keep);

}  // namespace envrun::runtime
