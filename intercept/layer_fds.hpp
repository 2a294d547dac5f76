// The O_PATH directory fds of the rules' layers (outside, upper), opened on first use and
// kept at high numbers (>= 900, close-on-exec) that the application's close, close_range,
// closefrom and dup2 cannot take away (hook_close.cpp asks fd_protected()).
// Internal to libenvrun-intercept.so; no allocation, no locks.
#pragma once
#include "intercept/db_format.h"
#include "intercept/resolve.hpp"

namespace envrun::icpt {

using Layer = Where;

inline constexpr int kProtectedFloor = 900;

// The fd of the rule's outside (Layer::Outside) or upper (Layer::Upper) directory, or
// -errno when it cannot be opened now (not cached: a later call tries again).
int layer_root_fd(const idb::FileRule& r, Layer layer);
// Forget the cached fd of a layer whose directory we just created (upper made on demand).
void layer_root_reset(const idb::FileRule& r, Layer layer);

// After a restore: drop every cached root whose path names another directory now (the
// instance's directories were made anew); the next use opens the path again.
void layer_roots_revalidate();

// True when fd is one of the library's own (cheap when fd < 900: one compare).
bool fd_protected(int fd);
// The lowest protected fd >= fd, or -1.
int next_protected(unsigned fd);
// The application is about to dup2/dup3 onto fd, one of ours: move ours elsewhere first.
void move_protected(int fd);

}  // namespace envrun::icpt
