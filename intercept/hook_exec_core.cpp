// The common path of every exec and spawn hook:
//   1. the target goes through the redirect rules (Op::Exec) and becomes one real path;
//   2. a #! script whose own path or interpreter path is redirected is run the way the
//      kernel would (argv = interpreter, optional argument, script, arguments) but with the
//      redirected interpreter; the script is named by its inside path when the interpreter
//      is a dynamic program (it reads the script through us), by its real path otherwise;
//   3. a static or set-id target (the loader will not preload us) follows the redirect
//      option exec_static: deny (EACCES), warn (one stderr line, the default), allow;
//   4. the environment gets LD_PRELOAD / ENVRUN_INTERCEPT_DB / _CTL back (hook_exec_env.cpp);
//   5. the meter counts the exec; accepted connections that close at exec stop counting.
// Buffers are alloca'd in run() itself: it may run in a vfork child (posix_spawn, or an
// application's vfork+execve) that shares the parent's heap and mappings.
#include <alloca.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <new>

#include "intercept/live_option.hpp"
#include "intercept/hook.hpp"
#include "intercept/chain.hpp"
#include "intercept/hook_exec.hpp"
#include "intercept/hook_net.hpp"
#include "intercept/resolved_path.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt::exec {

namespace {

constexpr int kMaxScripts = 4;                 // the kernel's BINPRM_MAX_RECURSION
constexpr size_t kEnvOnStack = 64 * 1024;      // larger environments go to an mmap
constexpr int kMaxSavedConnections = 64;

// One exec target after the rules.
struct Target {
  Resolved res;
  char real[PATH_MAX];
  const char* path = nullptr;  // what the kernel gets, with dirfd
  int dirfd = AT_FDCWD;
  Probe probe;
};

int resolve_target(Target& t, int dirfd, const char* path, int at_flags) {
  int rc = resolve(dirfd, path, Op::Exec, at_flags & AT_SYMLINK_NOFOLLOW, t.res);
  if (rc < 0) return rc;
  if (!t.res.redirected) {
    t.path = path;
    t.dirfd = dirfd;
  } else {
    long n = resolved_path_string(t.res, t.real, sizeof t.real);
    if (n < 0) return int(n);
    t.path = t.real;
    t.dirfd = AT_FDCWD;
  }
  return redirect_on() ? probe(t.dirfd, t.path, t.probe) : 0;
}

bool interceptable(const Probe& p) { return p.kind == Probe::ElfDynamic && !p.setuid && !p.setgid; }

// exec_static of the redirect interceptor: -EACCES to refuse, else 0 (after the warning).
int apply_exec_static(const Probe& p, const char* shown) {
  const char* what = p.kind == Probe::ElfStatic ? "static" : p.setuid ? "setuid" : p.setgid ? "setgid" : nullptr;
  if (what == nullptr || !redirect_on()) return 0;
  char live[32];
  const char* v = live_option(g_state.idx_redirect, "exec_static", live, sizeof live);
  if (v != nullptr && strcmp(v, "deny") == 0) return -EACCES;
  if (v != nullptr && strcmp(v, "allow") == 0) return 0;
  char msg[PATH_MAX + 96];
  size_t n = 0;
  auto add = [&](const char* s) {
    size_t k = strnlen(s, sizeof msg - 1 - n);
    memcpy(msg + n, s, k);
    n += k;
  };
  add("envrun-intercept: exec of ");
  add(what);
  add(" binary ");
  add(shown);
  add(": not intercepted\n");
  sys::write(2, msg, n);
  return 0;
}

// How the interpreter is told where the script is: its inside name when the interpreter
// reads it through us and the name stands alone, else a real path.
// `standalone`: the inside name does not depend on a caller's dirfd.
const char* script_name(Target& script, const char* inside, bool standalone, bool through_us) {
  if (through_us && standalone) return inside;
  if (script.res.redirected || script.dirfd == AT_FDCWD || script.path[0] == '/') return script.path;
  long n = resolved_path_string(script.res, script.real, sizeof script.real);  // caller's dirfd + relative
  return n < 0 ? script.path : script.real;
}

// Where the rebuilt environment lives: the caller's alloca, or (a huge environment) an
// anonymous mapping released when the exec or spawn has returned.
struct EnvArea {
  void* ptr = nullptr;
  size_t mapped = 0;
  int map(size_t need, void* on_stack) {
    if (on_stack != nullptr) {
      ptr = on_stack;
      return 0;
    }
    long m = sys::raw(SYS_mmap, 0, long(need), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m < 0 && m > -4096) return int(m);
    ptr = reinterpret_cast<void*>(m);
    mapped = need;
    return 0;
  }
  ~EnvArea() {
    if (mapped != 0) sys::raw(SYS_munmap, sys::L(ptr), long(mapped));
  }
};

size_t argc_of(char* const argv[]) {
  size_t n = 0;
  while (argv != nullptr && argv[n] != nullptr) ++n;
  return n;
}

// The final call with the fixed environment. Returns -errno (execve) or -error (spawn).
int final_call(const Target& t, char* const argv[], char* const env[], int at_flags, const SpawnCall* spawn) {
  if (spawn != nullptr) {
    int r = REAL(posix_spawn)(spawn->pid, t.path, spawn->actions, spawn->attr, argv, env);
    return -r;
  }
  int saved[kMaxSavedConnections];
  int nsaved = net::release_cloexec_connections(saved, kMaxSavedConnections);
  if (t.dirfd == AT_FDCWD && at_flags == 0) REAL(execve)(t.path, argv, env);
  else REAL(execveat)(t.dirfd, t.path, argv, env, at_flags);
  int e = errno;
  net::restore_connections(saved, nsaved);
  return -e;
}

int run_core(int dirfd, const char* path, char* const argv[], char* const envp[], int at_flags, const SpawnCall* spawn) {
  if (path == nullptr) return -EFAULT;
  Target* cur = new (alloca(sizeof(Target))) Target;
  int rc = resolve_target(*cur, dirfd, path, at_flags);
  if (rc < 0) return rc;
  const char* shown = path;        // the inside name, for messages
  char* const* args = argv;
  const Probe* unhandled_interp = nullptr;
  for (int depth = 0; cur->probe.kind == Probe::Script && depth < kMaxScripts; ++depth) {
    Target* next = new (alloca(sizeof(Target))) Target;
    rc = resolve_target(*next, AT_FDCWD, cur->probe.interp, 0);
    if (rc < 0) return rc;
    if (!cur->res.redirected && !next->res.redirected) {
      unhandled_interp = &next->probe;  // the kernel runs it; exec_static still applies
      break;
    }
    long x = sys::raw(SYS_faccessat2, cur->dirfd, sys::L(cur->path), X_OK, AT_EACCESS);
    if (x < 0) return int(x);
    size_t argc = argc_of(args);
    char** nargs = static_cast<char**>(alloca((argc + 4) * sizeof(char*)));
    size_t n = 0;
    nargs[n++] = const_cast<char*>(cur->probe.interp);
    if (cur->probe.arg) nargs[n++] = const_cast<char*>(cur->probe.arg);
    nargs[n++] = const_cast<char*>(script_name(*cur, shown, depth > 0 || dirfd == AT_FDCWD || path[0] == '/', interceptable(next->probe)));
    for (size_t i = 1; i < argc; ++i) nargs[n++] = args[i];
    nargs[n] = nullptr;
    args = nargs;
    shown = cur->probe.interp;
    cur = next;
    at_flags = 0;
  }
  rc = apply_exec_static(unhandled_interp ? *unhandled_interp : cur->probe, shown);
  if (rc < 0) return rc;

  EnvArea area;
  size_t need = env_bytes_needed(envp);
  char* const* env = envp;
  if (need > 0) {
    if (area.map(need, need <= kEnvOnStack ? alloca(need) : nullptr) < 0) return -ENOMEM;
    env = build_env(envp, area.ptr, need);
  }
  return final_call(*cur, args, env, at_flags, spawn);
}

int run_fd_core(int fd, char* const argv[], char* const envp[], int at_flags) {
  Probe p;
  if (redirect_on()) probe_fd(fd, p);
  char shown[32] = "/dev/fd/";
  size_t k = strlen(shown);
  shown[k + format_uint(unsigned(fd), shown + k)] = '\0';
  int rc = apply_exec_static(p, shown);
  if (rc < 0) return rc;
  EnvArea area;
  size_t need = env_bytes_needed(envp);
  char* const* env = envp;
  if (need > 0) {
    if (area.map(need, need <= kEnvOnStack ? alloca(need) : nullptr) < 0) return -ENOMEM;
    env = build_env(envp, area.ptr, need);
  }
  int saved[kMaxSavedConnections];
  int nsaved = net::release_cloexec_connections(saved, kMaxSavedConnections);
  REAL(execveat)(fd, "", argv, env, at_flags | AT_EMPTY_PATH);
  int e = errno;
  net::restore_connections(saved, nsaved);
  return -e;
}

// The exec class's chain: the meter counts kExecs on enter (a successful exec does not
// return) and takes it back when the call fails; the barrier may hold the call. The
// rules are applied inside the real step (a #! script's interpreter is only known once
// the script has been resolved and read).
template <class Fn>
struct ExecSteps : NoSteps {
  Fn fn;
  explicit ExecSteps(Fn f) : fn(f) {}
  void real(Call& c) {
    // A successful exec does not return: in a vfork child, whose memory (this thread's
    // t_call included) is the parent's, t_call must not be left pointing at this frame.
    // The rules applied inside fn() count directly.
    t_call = c.outer;
    c.result = fn();
    if (c.result != 0) c.failed = true;
  }
};

template <class Fn>
int through_chain(Fn fn) {
  Call c;
  c.cls = CallClass::Exec;
  c.meter = MeterAs::Exec;
  ExecSteps<Fn> h(fn);
  run_chain(c, plan_for(CallClass::Exec, live_mask()), h);
  return int(c.result);
}

}  // namespace

int run(int dirfd, const char* path, char* const argv[], char* const envp[], int at_flags, const SpawnCall* spawn) {
  return through_chain([=] { return run_core(dirfd, path, argv, envp, at_flags, spawn); });
}

int run_fd(int fd, char* const argv[], char* const envp[], int at_flags) {
  return through_chain([=] { return run_fd_core(fd, argv, envp, at_flags); });
}

}  // namespace envrun::icpt::exec
