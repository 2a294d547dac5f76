// Internals of the exec hooks (hook_exec*.cpp). Internal to libenvrun-intercept.so.
// No allocation: every buffer lives on the caller's stack (exec may run in a vfork child,
// whose heap and mappings are the parent's).
#pragma once
#include <spawn.h>
#include <sys/types.h>

#include <cstddef>

namespace envrun::icpt::exec {

// glibc declares the path arguments nonnull, and the compiler would drop our NULL checks;
// applications do pass NULL (the kernel answers EFAULT). This hides the attribute.
template <class T>
inline T* opaque(T* p) {
  __asm__("" : "+r"(p));
  return p;
}

// ---- what a file to execute is (hook_exec_probe.cpp) --------------------------------------
struct Probe {
  enum Kind : unsigned char { Unknown, ElfDynamic, ElfStatic, Script } kind = Unknown;
  bool setuid = false;    // runs with other credentials: the loader ignores LD_PRELOAD
  bool setgid = false;
  char line[256] = {};    // Script: the interpreter, NUL, then the optional argument
  const char* interp = nullptr;
  const char* arg = nullptr;  // nullptr when the #! line has none
};
// Read the head of the file at `path` (relative to dirfd). A file we cannot read (execute
// only, missing) is Unknown: the kernel will say what it thinks of it. Returns 0, or
// -ENOEXEC for a #! line without an interpreter.
int probe(int dirfd, const char* path, Probe& out);
int probe_fd(int fd, Probe& out);

// ---- the environment children get (hook_exec_env.cpp) -------------------------------------
// Bytes build_env needs for `envp` (LD_PRELOAD naming this library, ENVRUN_INTERCEPT_DB and
// _CTL set), or 0 when envp already has them and can be passed as is.
size_t env_bytes_needed(char* const envp[]);
// Build the new vector and its strings in `area` (env_bytes_needed bytes, 8-aligned).
char** build_env(char* const envp[], void* area, size_t bytes);

// ---- the common path of execve/posix_spawn (hook_exec_core.cpp) ---------------------------
struct SpawnCall {
  pid_t* pid;
  const posix_spawn_file_actions_t* actions;
  const posix_spawnattr_t* attr;
};
// Resolve `path` (Op::Exec), run #! scripts whose interpreter or script is redirected through
// the redirected interpreter, apply exec_static to static and setuid targets, fix the
// environment, then execve (spawn == nullptr: returns only on failure, -1 with errno) or
// posix_spawn (returns 0 or an error number).
int run(int dirfd, const char* path, char* const argv[], char* const envp[], int at_flags, const SpawnCall* spawn);
// fexecve/execveat(AT_EMPTY_PATH) of an open file: environment and exec_static only.
int run_fd(int fd, char* const argv[], char* const envp[], int at_flags);

// ---- PATH search (hook_exec_search.cpp) ---------------------------------------------------
// Find `file` (no '/') along the caller's PATH (default /bin:/usr/bin) through the rules:
// the first entry that resolves to an executable regular file. Writes its inside path to
// out (cap bytes) and returns 0, or an error number (ENOENT, EACCES, ENAMETOOLONG).
int search_path(const char* file, char* out, size_t cap);

}  // namespace envrun::icpt::exec
