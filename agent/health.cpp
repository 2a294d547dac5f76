#include "agent/health.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "kernel/fd.hpp"

namespace envrun::agent {

namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return int(std::max<long long>(ms, 0));
}

struct Url {
  std::string host, port = "80", path = "/";
};

Result<Url> parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    return Error::make(ErrorKind::Usage, "health check URL \"" + url + "\": only http:// is supported");
  Url u;
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) u.path = rest.substr(slash);
  if (!hostport.empty() && hostport[0] == '[') {  // [v6]:port
    auto close = hostport.find(']');
    if (close == std::string::npos) return Error::make(ErrorKind::Usage, "health check URL \"" + url + "\": unclosed [");
    u.host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size() && hostport[close + 1] == ':') u.port = hostport.substr(close + 2);
  } else {
    auto colon = hostport.rfind(':');
    u.host = hostport.substr(0, colon);
    if (colon != std::string::npos) u.port = hostport.substr(colon + 1);
  }
  if (u.host.empty() || u.port.empty())
    return Error::make(ErrorKind::Usage, "health check URL \"" + url + "\": no host or port");
  return u;
}

// Waits for `events` on fd until the deadline.
Result<void> wait_fd(int fd, short events, Clock::time_point deadline, const std::string& what) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, ms_left(deadline));
    if (n > 0) return ok();
    if (n == 0) return Error::make(ErrorKind::System, what + ": timed out");
    if (errno != EINTR) return Error::sys("poll");
  }
}

Result<UniqueFd> connect_to(const Url& u, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res);
  if (rc != 0) return Error::make(ErrorKind::System, u.host + ":" + u.port + ": " + ::gai_strerror(rc));
  Error last = Error::make(ErrorKind::System, u.host + ":" + u.port + ": no address");
  for (addrinfo* a = res; a; a = a->ai_next) {
    UniqueFd s(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (!s) continue;
    if (::connect(s.get(), a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
      last = Error::sys("connect " + u.host + ":" + u.port);
      continue;
    }
    auto w = wait_fd(s.get(), POLLOUT, deadline, "connect " + u.host + ":" + u.port);
    int err = 0;
    socklen_t len = sizeof err;
    if (w && ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
      ::freeaddrinfo(res);
      return s;
    }
    last = w ? Error::sys("connect " + u.host + ":" + u.port, err) : std::move(w).error();
  }
  ::freeaddrinfo(res);
  return last;
}

}  // namespace

Result<int> http_get_status(const std::string& url, int timeout_ms) {
  auto u = ENVRUN_TRY(parse_url(url));
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto s = ENVRUN_TRY(connect_to(u, deadline));
  std::string req = "GET " + u.path + " HTTP/1.0\r\nHost: " + u.host + "\r\nConnection: close\r\n\r\n";
  for (size_t sent = 0; sent < req.size();) {
    ENVRUN_CHECK(wait_fd(s.get(), POLLOUT, deadline, "send to " + url));
    ssize_t n = ::send(s.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) return Error::sys("send to " + url);
    if (n > 0) sent += size_t(n);
  }
  std::string head;
  while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
    ENVRUN_CHECK(wait_fd(s.get(), POLLIN, deadline, "answer from " + url));
    char buf[1024];
    ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n < 0 && errno != EAGAIN) return Error::sys("read from " + url);
    if (n == 0) break;
    if (n > 0) head.append(buf, size_t(n));
  }
  int code = 0;
  if (std::sscanf(head.c_str(), "HTTP/%*d.%*d %d", &code) != 1)
    return Error::make(ErrorKind::Generic, url + ": not an HTTP answer");
  return code;
}

Result<void> check_health(const InstanceOps& ops, const std::string& id, const HealthCheck& h,
                          const std::function<void(const std::string&)>& progress) {
  auto deadline = Clock::now() + std::chrono::seconds(std::max(h.timeout_s, 1));
  Error last = Error::make(ErrorKind::Generic, "no attempt");
  if (h.exec.empty() && h.http.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (ops.status(id) == runtime::Status::Running) return ok();
    return Error::make(ErrorKind::State, "instance " + id + " is not running");
  }
  for (int attempt = 1;; ++attempt) {
    if (ops.status(id) != runtime::Status::Running)
      return Error::make(ErrorKind::State, "instance " + id + " is not running");
    int slice = std::max(1, std::min(5, ms_left(deadline) / 1000 + 1));
    if (!h.exec.empty()) {
      std::vector<std::string> args{"exec", id, "--"};
      args.insert(args.end(), h.exec.begin(), h.exec.end());
      auto r = ops.envrun(args, slice);
      if (r) return ok();
      last = std::move(r).error();
    } else {
      auto code = http_get_status(h.http, slice * 1000);
      if (code && *code >= 200 && *code < 400) return ok();
      last = code ? Error::make(ErrorKind::Generic, "GET " + h.http + ": status " + std::to_string(*code))
                  : std::move(code).error();
    }
    if (progress && attempt == 1) progress("health check not passed yet: " + last.message);
    if (ms_left(deadline) <= 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(500, ms_left(deadline))));
    if (ms_left(deadline) <= 0) break;
  }
  return std::move(last).with_context("health check failed after " + std::to_string(h.timeout_s) + " s");
}

}  // namespace envrun::agent
