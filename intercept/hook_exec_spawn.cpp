// posix_spawn and posix_spawnp: the same rules as execve (hook_exec_core.cpp); the spawn
// itself is glibc's (clone + exec in the child). posix_spawnp searches PATH through the
// rules first (glibc's child would search the host directories). Errors are returned, as
// posix_spawn does, not stored in errno.
#include <errno.h>
#include <spawn.h>
#include <string.h>

#include "intercept/hook.hpp"
#include "intercept/hook_exec.hpp"

using namespace envrun::icpt;

HOOK int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* actions,
                     const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  ensure_init();
  int saved = errno;
  exec::SpawnCall call{pid, actions, attr};
  int rc = -exec::run(AT_FDCWD, exec::opaque(path), argv, envp, 0, &call);
  errno = saved;
  return rc;
}

HOOK int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* actions,
                      const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  ensure_init();
  file = exec::opaque(file);
  if (file == nullptr) return EFAULT;
  int saved = errno;
  char found[PATH_MAX];
  const char* path = file;
  if (strchr(file, '/') == nullptr) {
    int e = exec::search_path(file, found, sizeof found);
    if (e != 0) return e;
    path = found;
  }
  exec::SpawnCall call{pid, actions, attr};
  int rc = -exec::run(AT_FDCWD, path, argv, envp, 0, &call);
  errno = saved;
  return rc;
}
