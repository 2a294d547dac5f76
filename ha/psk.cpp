// load_psk: the key file's checks come before its contents are read.
#include "ha/psk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "kernel/fd.hpp"

namespace envrun::ha {

Result<std::vector<uint8_t>> load_psk(const std::string& path) {
  auto bad = [&](const std::string& why) { return Error::make(ErrorKind::Usage, "--psk-file " + path + ": " + why); };
  if (path.empty()) return Error::make(ErrorKind::Usage, "--psk-file is required (a file of at least 32 random bytes)");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return Error::sys("--psk-file " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return Error::sys("--psk-file " + path);
  if (!S_ISREG(st.st_mode)) return bad("not a regular file");
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    return bad(std::string("mode ") + mode + " lets group or others access the key (chmod 600 it)");
  }
  if (size_t(st.st_size) < kPskMinBytes)
    return bad(std::to_string(st.st_size) + " bytes: a key needs at least " + std::to_string(kPskMinBytes) +
               " random bytes (head -c 32 /dev/urandom > FILE)");
  if (size_t(st.st_size) > kPskMaxBytes)
    return bad(std::to_string(st.st_size) + " bytes: a key has at most " + std::to_string(kPskMaxBytes) + " bytes");
  std::vector<uint8_t> key(size_t(st.st_size));
  size_t got = 0;
  while (got < key.size()) {
    ssize_t n = ::read(fd.get(), key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("--psk-file " + path);
    if (n == 0) return bad("shorter than its size while reading it");
    got += size_t(n);
  }
  return key;
}

}  // namespace envrun::ha
