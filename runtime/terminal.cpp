#include "runtime/terminal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "runtime/init.hpp"
#include "runtime/sync.hpp"

namespace envrun::runtime {

Result<void> setup_console(int console_fd, const std::optional<oci::ConsoleSize>& size) {
  UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) return Error::sys("open /dev/ptmx (is devpts mounted on /dev/pts?)");
  if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0) return Error::sys("unlock pty");
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) return Error::sys("ptsname");
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return Error::sys(std::string("open ") + name);
  if (size && size->height && size->width) {
    struct winsize ws {};
    ws.ws_row = static_cast<unsigned short>(size->height);
    ws.ws_col = static_cast<unsigned short>(size->width);
    ::ioctl(slave.get(), TIOCSWINSZ, &ws);
  }
  ENVRUN_CHECK(send_fd(console_fd, master.get(), name));
  master.reset();
  for (int i = 0; i < 3; ++i)
    if (::dup2(slave.get(), i) < 0) return Error::sys("dup2 pty slave");
  if (::ioctl(0, TIOCSCTTY, 0) != 0) return Error::sys("TIOCSCTTY");
  return ok();
}

Result<UniqueFd> connect_console_socket(const std::string& path) {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Error::make(ErrorKind::Usage, "--console-socket " + path + ": path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return Error::sys("socket");
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Error::make(ErrorKind::Usage, "--console-socket " + path + ": " + std::strerror(errno));
  return s;
}

static bool copy_once(int from, int to) {
  char buf[8192];
  ssize_t n = ::read(from, buf, sizeof buf);
  if (n <= 0) return false;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = ::write(to, buf + off, size_t(n - off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += w;
  }
  return true;
}

bool relay_console(int master, int stop_fd) {
  struct termios saved {};
  bool raw = ::isatty(0) && ::tcgetattr(0, &saved) == 0;
  if (raw) {
    struct termios t = saved;
    ::cfmakeraw(&t);
    ::tcsetattr(0, TCSANOW, &t);
    struct winsize ws {};
    if (::ioctl(0, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
  }
  bool in_open = true, hung_up = false;
  for (;;) {
    struct pollfd p[3] = {{master, POLLIN, 0}, {stop_fd, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}};
    int r = ::poll(p, 3, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (p[0].revents & POLLIN) {
      if (!copy_once(master, 1)) {
        hung_up = true;
        break;
      }
      continue;  // drain output before looking at the stop fd
    }
    if (p[0].revents & (POLLHUP | POLLERR)) {
      hung_up = true;
      break;
    }
    if (p[2].revents & (POLLIN | POLLHUP)) {
      if (!copy_once(0, master)) in_open = false;
    }
    if (p[1].revents) break;
  }
  if (raw) ::tcsetattr(0, TCSANOW, &saved);
  return hung_up;
}

}  // namespace envrun::runtime
