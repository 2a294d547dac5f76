// Helpers shared by the init and exec paths: executable lookup, fd hygiene.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "runtime/init.hpp"

namespace envrun::runtime {

static bool is_executable_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

Result<std::string> find_executable(const std::string& arg0, const std::vector<std::string>& env) {
  if (arg0.find('/') != std::string::npos) {
    if (is_executable_file(arg0)) return arg0;
    return Error::make(ErrorKind::Exec, "process.args[0] \"" + arg0 + "\": " +
                                            (::access(arg0.c_str(), F_OK) == 0 ? "not an executable file"
                                                                                : "no such file in the rootfs"));
  }
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (auto& e : env)
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find(':', i);
    if (j == std::string::npos) j = path.size();
    std::string dir = j > i ? path.substr(i, j - i) : ".";
    std::string cand = dir + "/" + arg0;
    if (is_executable_file(cand)) return cand;
    i = j + 1;
  }
  return Error::make(ErrorKind::Exec, "process.args[0] \"" + arg0 +
                                          "\": executable file not found in the rootfs (PATH=" + path + ")");
}

void close_fds_except(int preserve, std::initializer_list<int> keep) {
  int first = 3 + (preserve > 0 ? preserve : 0);
  for (int fd = 3; fd < first; ++fd) ::fcntl(fd, F_SETFD, 0);  // preserved fds survive the exec
  // Mark the rest close-on-exec: fds the exec needs (listed in `keep`) are CLOEXEC already.
  if (::syscall(SYS_close_range, first, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) == 0) return;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return;
  int self = ::dirfd(d);
  while (auto* e = ::readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (fd < first || fd == self) continue;
    bool kept = false;
    for (int k : keep) kept |= (k == fd);
    if (!kept) ::close(fd);
  }
  ::closedir(d);
}

}  // namespace envrun::runtime
