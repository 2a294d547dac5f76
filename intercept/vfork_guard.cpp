// The vfork mark and the pid check (vfork_guard.hpp).
#include "intercept/vfork_guard.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>

#include "intercept/sys.hpp"

namespace envrun::icpt {

constinit __thread bool t_after_vfork asm("envrun_t_after_vfork") __attribute__((tls_model("initial-exec"))) = false;

namespace {

constinit std::atomic<int> g_owner_pid{0};  // the process the records belong to

void owner_is_me() { g_owner_pid.store(sys::getpid(), std::memory_order_relaxed); }

}  // namespace

void vfork_guard_init() {
  owner_is_me();
  pthread_atfork(nullptr, nullptr, owner_is_me);
}

bool records_writable_slow() {
  int owner = g_owner_pid.load(std::memory_order_relaxed);
  if (owner != 0 && owner != sys::getpid()) return false;  // the child: the mark stays
  t_after_vfork = false;                                    // the parent, resumed
  return true;
}

}  // namespace envrun::icpt

// libc's vfork, resolved before main (a vfork from a constructor that runs earlier gets
// fork, which is a valid vfork).
extern "C" {
__attribute__((visibility("hidden"))) void* envrun_real_vfork = reinterpret_cast<void*>(&fork);
}

namespace {

__attribute__((constructor)) void resolve_vfork() {
  envrun::icpt::vfork_guard_init();
  if (void* p = dlsym(RTLD_NEXT, "vfork")) envrun_real_vfork = p;
}

}  // namespace

#if defined(__x86_64__)
// Mark the thread, then jump (not call) into libc's vfork: the child returns straight to
// our caller on the caller's frame, as with libc's own vfork.
extern "C" __attribute__((visibility("default"), naked)) int vfork() {
  __asm__(
      "movq envrun_t_after_vfork@gottpoff(%rip), %rax\n\t"
      "movb $1, %fs:(%rax)\n\t"
      "jmp *envrun_real_vfork(%rip)\n\t");
}
#endif
