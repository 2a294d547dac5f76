// Union directory listings for merge and writecopy rules: a DIR (or a raw directory fd read
// with getdents64) of the primary layer (upper / outside) continues with the entries of the
// second layer (lower / host) that the first does not have; whiteouts and `.wh.*` names are
// hidden. A fixed table of open unions keyed by the primary fd; no allocation.
// Internal to libenvrun-intercept.so.
#pragma once
#include <dirent.h>

#include "intercept/resolve.hpp"

namespace envrun::icpt {

// After opendir(out.path) succeeded for a redirected path: start a union when it needs one.
void union_attach(DIR* d, const Resolved& out);
// After fdopendir(fd): the same, from what the library knows of fd.
void union_attach_fd(DIR* d, int fd);

// readdir/readdir64 on d: the next entry of the union (or of d itself when d is no union).
struct dirent* union_readdir(DIR* d);
struct dirent64* union_readdir64(DIR* d);
// rewinddir: both layers again. closedir: the second layer is closed too.
void union_rewind(DIR* d);
void union_close(DIR* d);

// getdents64 on a raw fd (a union when fd was opened through a merge/writecopy rule).
long union_getdents64(int fd, void* buf, size_t n);

// The fd was closed: drop its union (cheap when no union is open).
void union_forget_fd(int fd);
void union_forget_range(unsigned first, unsigned last);

}  // namespace envrun::icpt
