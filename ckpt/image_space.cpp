// estimate_image_bytes, reserve_image_space (image_space.hpp).
#include "ckpt/image_space.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "ckpt/proc_read.hpp"

namespace envrun::ckpt {

namespace {
// Sum of the smaps_rollup fields that end up in an image, in bytes.
uint64_t image_bytes_of(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/smaps_rollup").c_str(), "re");
  if (!f) return 0;
  uint64_t total = 0;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long kib = 0;
    char key[64];
    if (std::sscanf(line, "%63[^:]: %llu kB", key, &kib) != 2) continue;
    if (!std::strcmp(key, "Anonymous") || !std::strcmp(key, "Swap") || !std::strcmp(key, "Pss_Shmem"))
      total += uint64_t(kib) << 10;
  }
  std::fclose(f);
  return total;
}
}  // namespace

uint64_t estimate_image_bytes(pid_t root) {
  uint64_t total = 0;
  for (pid_t pid : proc::tree(root)) total += image_bytes_of(pid);
  return total + total / 100;
}

uint64_t reserve_image_space(int fd, uint64_t bytes) {
  struct stat st {};
  if (bytes == 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  off_t at = ::lseek(fd, 0, SEEK_CUR);
  if (at < 0 || ::fallocate(fd, 0, at, off_t(bytes)) != 0) return 0;
  return bytes;
}

}  // namespace envrun::ckpt
