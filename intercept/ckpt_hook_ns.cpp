// unshare(CLONE_NEWUSER) and setns() into a user namespace need a single-threaded caller:
// the checkpoint thread (ckpt_thread.hpp) would make them fail with EINVAL in a program
// that has no thread of its own. When the call fails so and the thread runs, it is
// stopped, the call made again (until the kernel let the thread go: it leaves the thread
// group a little after pthread_join returns), and the thread started anew.
#include <sched.h>
#include <time.h>

#include "intercept/ckpt_thread.hpp"
#include "intercept/hook.hpp"
#include "intercept/sys.hpp"

using namespace envrun::icpt;

namespace {

template <class Call>
int single_threaded(Call call) {
  int r = call();
  if (r == 0 || errno != EINVAL || !ckpt::stop_thread()) return r;
  for (int i = 0; i < 200; ++i) {  // at most ~200 ms for the thread to leave the group
    r = call();
    if (r == 0 || errno != EINVAL) break;
    struct timespec ts = {0, 1000000};
    sys::raw(SYS_nanosleep, sys::L(&ts), 0);
  }
  ErrnoKeeper keep;
  ckpt::start_thread();
  return r;
}

}  // namespace

HOOK int unshare(int flags) {
  ensure_init();
  if (!(flags & CLONE_NEWUSER)) return REAL(unshare)(flags);
  return single_threaded([&] { return REAL(unshare)(flags); });
}

HOOK int setns(int fd, int nstype) {
  ensure_init();
  if (nstype != 0 && nstype != CLONE_NEWUSER) return REAL(setns)(fd, nstype);
  return single_threaded([&] { return REAL(setns)(fd, nstype); });
}
