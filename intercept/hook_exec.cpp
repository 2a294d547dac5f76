// The execve family: execve, execv, execvp, execvpe, execl, execlp, execle, fexecve,
// execveat. glibc implements the convenience forms on its internal __execve (not
// interposable), so each is hooked and brought to exec::run (hook_exec_core.cpp); the
// PATH forms search through the rules themselves and, like glibc, run a found file the
// kernel calls ENOEXEC (no #!) with /bin/sh.
#include <alloca.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "intercept/hook.hpp"
#include "intercept/hook_exec.hpp"

extern "C" char** environ;

using namespace envrun::icpt;

namespace {

constexpr size_t kMaxListArgs = 1u << 18;  // execl* lists beyond this would not fit ARG_MAX

int fail(int neg) {
  errno = -neg;
  return -1;
}

int do_execve(const char* path, char* const argv[], char* const envp[]) {
  path = exec::opaque(path);
  return fail(exec::run(AT_FDCWD, path, argv, envp, 0, nullptr));
}

// glibc's fallback for a found file without #! that the kernel refuses (ENOEXEC).
int exec_with_shell(const char* file, char* const argv[], char* const envp[]) {
  size_t argc = 0;
  while (argv != nullptr && argv[argc] != nullptr) ++argc;
  char** nargs = static_cast<char**>(alloca((argc + 2) * sizeof(char*)));
  nargs[0] = const_cast<char*>("/bin/sh");
  nargs[1] = const_cast<char*>(file);
  for (size_t i = 1; i < argc; ++i) nargs[i + 1] = argv[i];
  nargs[argc < 1 ? 2 : argc + 1] = nullptr;
  return exec::run(AT_FDCWD, "/bin/sh", nargs, envp, 0, nullptr);
}

int do_execvpe(const char* file, char* const argv[], char* const envp[]) {
  file = exec::opaque(file);
  if (file == nullptr) return fail(-EFAULT);
  char found[PATH_MAX];
  const char* path = file;
  if (strchr(file, '/') == nullptr) {
    int e = exec::search_path(file, found, sizeof found);
    if (e != 0) return fail(-e);
    path = found;
  }
  int rc = exec::run(AT_FDCWD, path, argv, envp, 0, nullptr);
  if (rc == -ENOEXEC) rc = exec_with_shell(path, argv, envp);
  return fail(rc);
}

// Count the arguments after `first` up to the NULL (not included).
size_t count_list(const char* first, va_list ap) {
  if (first == nullptr) return 0;
  size_t n = 1;
  va_list c;
  va_copy(c, ap);
  while (n <= kMaxListArgs && va_arg(c, char*) != nullptr) ++n;
  va_end(c);
  return n;
}

}  // namespace

// The list forms collect their arguments on the stack (alloca in the hook's own frame).
#define COLLECT_LIST(first, ap, argv)                                        \
  size_t argc_ = count_list(first, ap);                                      \
  if (argc_ > kMaxListArgs) {                                                \
    va_end(ap);                                                              \
    return fail(-E2BIG);                                                     \
  }                                                                          \
  char** argv = static_cast<char**>(alloca((argc_ + 1) * sizeof(char*)));    \
  if (argc_ > 0) argv[0] = const_cast<char*>(first);                         \
  for (size_t i_ = 1; i_ < argc_; ++i_) argv[i_] = va_arg(ap, char*);        \
  if (argc_ > 0) (void)va_arg(ap, char*); /* the terminating NULL */         \
  argv[argc_] = nullptr

HOOK int execve(const char* path, char* const argv[], char* const envp[]) {
  ensure_init();
  return do_execve(path, argv, envp);
}

HOOK int execv(const char* path, char* const argv[]) {
  ensure_init();
  return do_execve(path, argv, environ);
}

HOOK int execvpe(const char* file, char* const argv[], char* const envp[]) {
  ensure_init();
  return do_execvpe(file, argv, envp);
}

HOOK int execvp(const char* file, char* const argv[]) {
  ensure_init();
  return do_execvpe(file, argv, environ);
}

HOOK int execl(const char* path, const char* arg, ...) {
  ensure_init();
  va_list ap;
  va_start(ap, arg);
  COLLECT_LIST(arg, ap, argv);
  va_end(ap);
  return do_execve(path, argv, environ);
}

HOOK int execlp(const char* file, const char* arg, ...) {
  ensure_init();
  va_list ap;
  va_start(ap, arg);
  COLLECT_LIST(arg, ap, argv);
  va_end(ap);
  return do_execvpe(file, argv, environ);
}

HOOK int execle(const char* path, const char* arg, ...) {
  ensure_init();
  va_list ap;
  va_start(ap, arg);
  COLLECT_LIST(arg, ap, argv);
  char* const* envp = va_arg(ap, char* const*);
  va_end(ap);
  return do_execve(path, argv, envp);
}

HOOK int fexecve(int fd, char* const argv[], char* const envp[]) {
  ensure_init();
  return fail(exec::run_fd(fd, argv, envp, 0));
}

HOOK int execveat(int dirfd, const char* path, char* const argv[], char* const envp[], int flags) {
  ensure_init();
  path = exec::opaque(path);
  if (path != nullptr && path[0] == '\0' && (flags & AT_EMPTY_PATH))
    return fail(exec::run_fd(dirfd, argv, envp, flags & ~AT_EMPTY_PATH));
  return fail(exec::run(dirfd, path, argv, envp, flags, nullptr));
}
