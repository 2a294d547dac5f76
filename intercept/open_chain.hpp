// The open family's steps in the chain (open_redirected.cpp). Internal.
#pragma once
#include "intercept/chain.hpp"
#include "intercept/path_util.hpp"

namespace envrun::icpt {

// What the redirect step leaves for the real open.
struct OpenRoute {
  InsidePath in;
  bool base_real = false;
  bool ruled = false;                        // the fd gets in.s as its inside path
  const idb::FileRule* beneath = nullptr;    // try one openat2 beneath this rule's root
  Resolved out;
};

// redirect's enter step: refuse (hide, readonly writes, resolver errors) or rewrite c.
bool open_redirect_step(Call& c, OpenRoute& r);
// The real function: openat (or openat2 beneath a rule); sets c.result / c.failed.
void open_real_step(Call& c, OpenRoute& r);

struct OpenSteps : NoSteps {
  OpenRoute route;
  bool redirect(Call& c) { return open_redirect_step(c, route); }
  void real(Call& c) { open_real_step(c, route); }
};

// The whole chain for an open with plan p: the fd, or -1 with errno.
int open_chain(const Plan& p, int dirfd, const char* path, int flags, unsigned mode);

}  // namespace envrun::icpt
