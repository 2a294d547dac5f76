// Who may change the library's per-fd records (fd_table, dir_union): not a vfork child.
// A vfork child runs in its parent's memory until it execs or exits; the fds it closes
// (close_range before exec, dup2 onto 0-2) are its own, but the records are the parent's.
// vfork is hooked by a two-instruction trampoline that marks the calling thread (a TLS
// flag the child shares, since it runs on that thread's TLS) and jumps into libc's vfork.
// Only a marked thread asks the kernel for its pid (once after each vfork in the parent,
// at each record change in the child); every other thread pays one TLS load.
// Internal to libenvrun-intercept.so; no allocation, async-signal-safe.
#pragma once

namespace envrun::icpt {

extern __thread bool t_after_vfork asm("envrun_t_after_vfork") __attribute__((tls_model("initial-exec")));

// Slow part of records_writable(): the pid check (clears the mark in the parent).
bool records_writable_slow();

// False in a vfork child: leave the records alone.
inline bool records_writable() {
  return __builtin_expect(!t_after_vfork, 1) || records_writable_slow();
}

}  // namespace envrun::icpt
