// Room for an image file before the tree is frozen. Writing into new tmpfs pages costs
// their allocation as much as the copy (1 GiB in 1 MiB writes, this machine: 0.44-0.66 s
// into a new file, 0.22-0.30 s into one fallocate'd first, the fallocate 0.3 s). Done
// while the tree still runs, that allocation leaves the frozen window. The writer cuts
// the file to what it wrote at finish() (ImageWriter), so an estimate too large costs
// only the time to allocate it.
#pragma once
#include <sys/types.h>

#include <cstdint>

namespace envrun::ckpt {

// What the memory of the tree under `root` may take in an image: anonymous, swapped and
// shared memory of every process (/proc/PID/smaps_rollup), plus 1% for the headers. 0 when
// nothing can be read.
uint64_t estimate_image_bytes(pid_t root);
// Allocates `bytes` of a regular image file from its current offset on (fallocate);
// anything else (a pipe, a socket, a file system without fallocate, no room) is left as
// it is: the dump then allocates as it writes. Returns the bytes reserved.
uint64_t reserve_image_space(int fd, uint64_t bytes);

}  // namespace envrun::ckpt
