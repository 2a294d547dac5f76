// Union directory listings for merge and writecopy rules: a DIR (or a raw directory fd read
// with getdents64) of the primary layer (upper / outside) that continues with the entries of
// the second layer (lower / host) that the first has not listed, whiteouts and `.wh.*`
// names hidden. A fixed table of open unions, keyed by the primary fd.
// Internal to libenvrun-intercept.so.
#pragma once
#include <dirent.h>

namespace envrun::icpt {

// The fd was closed: drop its union (cheap when no union is open).
void union_forget_fd(int fd);
void union_forget_range(unsigned first, unsigned last);

}  // namespace envrun::icpt
