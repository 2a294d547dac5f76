// The chain for the path family's simple shape: redirect resolves (dirfd, path) for an Op,
// then the real function gets the result. The fast path (no barrier up, no rule can apply)
// calls the real function with the caller's own arguments. Internal.
#pragma once
#include <errno.h>

#include "intercept/chain.hpp"
#include "intercept/fast_path.hpp"

namespace envrun::icpt {

// The plan's barrier, if any, lets calls through now.
inline bool barrier_ok(const Plan& p) { return !p.barrier || barrier_clear(); }

// The fast path's test: no barrier up and no rule can apply to (dirfd, path).
inline bool fast(const Plan& p, int dirfd, const char* path) {
  return barrier_ok(p) && rules_pass(p.redirect, dirfd, path);
}

template <class Real>
struct PathSteps : NoSteps {
  Real fn;
  int at_flags;
  Resolved out;
  PathSteps(Real f, int af) : fn(f), at_flags(af) {}
  bool redirect(Call& c) {
    int rc = resolve(c.dirfd, c.path, c.op, at_flags, out);
    if (rc < 0) return refuse(c, rc);
    c.dirfd = out.dirfd;
    c.path = out.path;
    c.res = &out;
    return true;
  }
  void real(Call& c) {
    long r = long(fn(c.dirfd, c.path));
    c.result = r;
    if (r < 0) c.failed = true, c.err = errno;
  }
};

// Inside a PathSteps real function: what redirect resolved (null: nothing, or no chain).
inline const Resolved* current_resolved() { return t_call != nullptr ? t_call->res : nullptr; }

// Run (dirfd, path) for op through the chain with plan p (no fast path); real(dirfd, path)
// returns an integer, negative (-1 with errno) on failure. The result, or -1 with errno.
template <class Real>
auto path_chain(const Plan& p, int dirfd, const char* path, Op op, int at_flags, Real real)
    -> decltype(real(dirfd, path)) {
  using R = decltype(real(dirfd, path));
  Call c;
  c.op = op;
  c.dirfd = dirfd;
  c.path = path;
  c.flags = at_flags;
  PathSteps<Real> h(real, at_flags);
  run_chain(c, p, h);
  if (c.failed) {
    errno = c.err;
    return R(-1);
  }
  return R(c.result);
}

// The same with the fast path first.
template <class Real>
auto path_call(int dirfd, const char* path, Op op, int at_flags, Real real) -> decltype(real(dirfd, path)) {
  ensure_init();
  const Plan& p = plan_for(CallClass::Path, live_mask());
  if (fast(p, dirfd, path)) return real(dirfd, path);
  return path_chain(p, dirfd, path, op, at_flags, real);
}

}  // namespace envrun::icpt
