// _exit, _Exit and quick_exit end the process without the library's destructors: the
// meter moves every thread's batch to the control page first (meter_batch.cpp) and ends
// the counting of the accepted connections the process holds (the kernel closes them
// without close()). exit() runs the destructors, which do the same.
#include <stdlib.h>
#include <unistd.h>

#include "intercept/hook.hpp"
#include "intercept/hook_net.hpp"
#include "intercept/meter.hpp"
#include "intercept/sys.hpp"

using namespace envrun::icpt;

namespace {

void before_exit() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  meter::flush_process();
  net::release_connections_at_exit();
}

// What libc's _exit does (no symbol lookup: this may run in a vfork child).
[[noreturn]] void exit_group(int status) {
  for (;;) sys::raw(SYS_exit_group, status);
}

}  // namespace

HOOK void _exit(int status) {
  before_exit();
  exit_group(status);
}

HOOK void _Exit(int status) {
  before_exit();
  exit_group(status);
}

HOOK void quick_exit(int status) noexcept {
  before_exit();  // before the at_quick_exit handlers: their I/O is not counted
  REAL(quick_exit)(status);
  __builtin_unreachable();
}
