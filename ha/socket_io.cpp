// write_all / read_exact: poll with a deadline, then non-blocking sendmsg/read.
#include "ha/socket_io.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace envrun::ha {

namespace {

using Clock = std::chrono::steady_clock;

std::string seconds_text(int ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

// Waits until fd is ready for `events`, the deadline passes, or cancel_fd is readable.
Result<void> wait_ready(const IoContext& c, short events, Clock::time_point deadline, const std::string& doing) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0)
      return Error::make(ErrorKind::Generic, c.peer + ": timed out after " + seconds_text(c.timeout_ms) + " " + doing);
    pollfd p[2] = {{c.fd, events, 0}, {c.cancel_fd, POLLIN, 0}};
    int n = ::poll(p, c.cancel_fd >= 0 ? 2 : 1, int(std::min<long long>(left, 1 << 30)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys(c.peer + ": poll");
    if (c.cancel_fd >= 0 && (p[1].revents & POLLIN)) return Error::make(ErrorKind::Generic, c.peer + ": cancelled");
    if (n > 0 && p[0].revents) return ok();
  }
}

}  // namespace

Result<void> write_all(const IoContext& c, std::span<iovec> iov) {
  auto deadline = Clock::now() + std::chrono::milliseconds(c.timeout_ms);
  size_t first = 0;
  while (first < iov.size()) {
    if (iov[first].iov_len == 0) {
      ++first;
      continue;
    }
    msghdr m{};
    m.msg_iov = &iov[first];
    m.msg_iovlen = iov.size() - first;
    ssize_t n = ::sendmsg(c.fd, &m, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      ENVRUN_CHECK(wait_ready(c, POLLOUT, deadline, "sending to the peer"));
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
      return Error{errno, ErrorKind::Generic, c.peer + ": peer closed mid-transfer (while sending)"};
    if (n < 0) return Error::sys(c.peer + ": send");
    deadline = Clock::now() + std::chrono::milliseconds(c.timeout_ms);  // progress: a fresh timeout
    for (size_t done = size_t(n); done > 0 && first < iov.size();) {
      size_t take = std::min(done, iov[first].iov_len);
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + take;
      iov[first].iov_len -= take;
      done -= take;
      if (iov[first].iov_len == 0) ++first;
    }
  }
  return ok();
}

Result<void> read_exact(const IoContext& c, std::span<uint8_t> out, const std::string& what) {
  auto deadline = Clock::now() + std::chrono::milliseconds(c.timeout_ms);
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(c.fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      ENVRUN_CHECK(wait_ready(c, POLLIN, deadline, "waiting for the peer (" + what + ")"));
      continue;
    }
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      std::string where = got == 0 ? "before " + what : "after " + std::to_string(got) + " of " +
                                                            std::to_string(out.size()) + " bytes of " + what;
      return Error{n < 0 ? ECONNRESET : 0, ErrorKind::Generic, c.peer + ": peer closed mid-transfer (" + where + ")"};
    }
    if (n < 0) return Error::sys(c.peer + ": read");
    got += size_t(n);
    deadline = Clock::now() + std::chrono::milliseconds(c.timeout_ms);
  }
  return ok();
}

bool input_pending(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && p.revents;
}

Result<void> prepare_socket(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return Error::sys("fcntl O_NONBLOCK");
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on unix sockets
  return ok();
}

}  // namespace envrun::ha
