// The hooks of the I/O family (hook_io*.cpp) share one shape: the barrier may hold the call
// (a checkpoint is in progress), the real function runs with the caller's arguments, and
// the meter, when on, counts what it transferred (meter.hpp). No rule applies to I/O on an
// fd, so the redirect and net interceptors take no part. Internal to libenvrun-intercept.so.
#pragma once
#include <sys/types.h>

#include "intercept/meter.hpp"
#include "intercept/path_chain.hpp"

namespace envrun::icpt {

// The plan of an I/O call: the path class's (meter and barrier), after the barrier; held
// for the hook's scope (`const Plan& p = io_plan();`, see PlanScope).
inline PlanScope io_plan() {
  ensure_init();
  return PlanScope(CallClass::Path, live_mask(), /*wait_barrier=*/true);
}

// A read of `fd` that returned r (write: metered_out), under plan p.
inline void metered_in(const Plan& p, int fd, ssize_t r) {
  if (p.meter && r > 0) meter::io_in(fd, uint64_t(r));
}
inline void metered_out(const Plan& p, int fd, ssize_t r) {
  if (p.meter && r > 0) meter::io_out(fd, uint64_t(r));
}

}  // namespace envrun::icpt
