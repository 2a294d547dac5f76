// Sockets, epoll instances and eventfds at dump time (dump_sockets.hpp).
#include "ckpt/dump_sockets.hpp"

#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <sstream>
#include <thread>

#include "ckpt/sockets.hpp"
#include "ckpt/tcp_repair.hpp"
#include "kernel/fd.hpp"
#include "kernel/process.hpp"

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

namespace envrun::ckpt {

namespace {

std::string at(pid_t, int fd) { return "fd " + std::to_string(fd); }  // (the caller names the pid)

// The target's open file description, as an fd of ours.
Result<UniqueFd> take_fd(pid_t pid, int fd) {
  auto pidfd = ENVRUN_TRY(envrun::proc::pidfd_open(pid));
  int mine = int(::syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0));
  if (mine < 0) return Error::sys(at(pid, fd) + ": pidfd_getfd");
  return UniqueFd(mine);
}

int int_opt(int s, int level, int opt, bool* ok = nullptr) {
  int v = 0;
  socklen_t len = sizeof v;
  bool got = ::getsockopt(s, level, opt, &v, &len) == 0;
  if (ok) *ok = got;
  return got ? v : 0;
}

// A NETLINK_SOCK_DIAG socket in the network namespace of pid: made by a thread of ours
// that joins that namespace (setns of a network namespace changes the calling thread only).
Result<UniqueFd> diag_socket_in(pid_t pid) {
  UniqueFd ns(::open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return Error::sys("pid " + std::to_string(pid) + ": its network namespace");
  int fd = -1, err = 0;
  std::thread t([&]() {
    if (::setns(ns.get(), CLONE_NEWNET) < 0) {
      err = errno;
      return;
    }
    fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) err = errno;
  });
  t.join();
  if (fd < 0) return Error::sys("pid " + std::to_string(pid) + ": sock_diag socket in its network namespace", err);
  return UniqueFd(fd);
}

// Sends one sock_diag request and calls `each` for every answer message.
Result<void> diag(int nl, const void* req, size_t req_len, bool dump, const std::function<void(const nlmsghdr*)>& each) {
  struct {
    nlmsghdr h;
    char body[128];
  } msg{};
  msg.h.nlmsg_len = NLMSG_LENGTH(req_len);
  msg.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.h.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
  msg.h.nlmsg_seq = 1;
  std::memcpy(msg.body, req, req_len);
  if (::send(nl, &msg, msg.h.nlmsg_len, 0) < 0) return Error::sys("sock_diag: send");
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    ssize_t n = ::recv(nl, buf, sizeof buf, 0);
    if (n < 0) return Error::sys("sock_diag: recv");
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, size_t(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return ok();
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        if (e->error == 0) return ok();
        return Error::sys("sock_diag", -e->error);
      }
      each(h);
      if (!dump) return ok();
    }
  }
}

// The inode of a unix socket's peer (0: none).
Result<uint32_t> unix_peer(pid_t pid, uint64_t ino) {
  auto nl = ENVRUN_TRY(diag_socket_in(pid));
  unix_diag_req req{};
  req.sdiag_family = AF_UNIX;
  req.udiag_states = ~0u;
  req.udiag_ino = uint32_t(ino);
  req.udiag_show = UDIAG_SHOW_PEER;
  req.udiag_cookie[0] = req.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
  uint32_t peer = 0;
  ENVRUN_CHECK(diag(nl.get(), &req, sizeof req, false, [&](const nlmsghdr* h) {
    auto* m = static_cast<const unix_diag_msg*>(NLMSG_DATA(h));
    int len = int(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (auto* a = reinterpret_cast<const rtattr*>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len))
      if (a->rta_type == UNIX_DIAG_PEER) std::memcpy(&peer, RTA_DATA(a), sizeof peer);
  }));
  return peer;
}

// A listening TCP socket's backlog (sk_max_ack_backlog, shown as idiag_wqueue; 0 unknown)
// and the connections in its accept queue (idiag_rqueue).
struct ListenQueue {
  int backlog = 0;
  uint32_t pending = 0;
};
ListenQueue listen_queue(pid_t pid, int family, uint64_t ino) {
  ListenQueue q;
  auto nl = diag_socket_in(pid);
  if (!nl) return q;
  inet_diag_req_v2 req{};
  req.sdiag_family = uint8_t(family);
  req.sdiag_protocol = IPPROTO_TCP;
  req.idiag_states = 1u << 10;  // TCP_LISTEN
  (void)diag(nl->get(), &req, sizeof req, true, [&](const nlmsghdr* h) {
    auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
    if (m->idiag_inode == ino) q.backlog = int(m->idiag_wqueue), q.pending = m->idiag_rqueue;
  });
  return q;
}

// Bytes queued for reading on a stream socket, left in place (MSG_PEEK).
Result<std::vector<uint8_t>> peek_queue(int s, const std::string& where) {
  std::vector<uint8_t> out(size_t(1) << 20);
  ssize_t n = ::recv(s, out.data(), out.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Error::sys(where + ": peek the queued bytes");
  out.resize(n > 0 ? size_t(n) : 0);
  return out;
}

}  // namespace

Result<void> dump_socket(pid_t pid, const proc::FdInfo& fd, OpenFile& f, SocketDump& out, bool tcp_established) {
  auto s = ENVRUN_TRY(take_fd(pid, fd.fd));
  auto& k = f.sock;
  f.kind = OpenFile::Kind::Socket;
  k.family = int_opt(s.get(), SOL_SOCKET, SO_DOMAIN);
  k.type = int_opt(s.get(), SOL_SOCKET, SO_TYPE);
  k.protocol = int_opt(s.get(), SOL_SOCKET, SO_PROTOCOL);
  k.listening = int_opt(s.get(), SOL_SOCKET, SO_ACCEPTCONN) != 0;
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len) == 0) sock::from_sockaddr(sa, len, k.addr, k.port);
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  bool connected = ::getpeername(s.get(), reinterpret_cast<sockaddr*>(&peer), &plen) == 0;
  if (connected) sock::from_sockaddr(peer, plen, k.peer_addr, k.peer_port);
  for (const auto& o : sock::kOptions) {
    if (!sock::applies(o, k.family, k.type, k.protocol)) continue;
    bool got = false;
    int v = int_opt(s.get(), o.level, o.opt, &got);
    if (got) k.opts[o.name] = v;
  }
  std::string what = at(pid, fd.fd) + ": " + sock::describe(k.family, k.type, k.addr, k.port);
  struct stat st {};
  if (::fstat(s.get(), &st) == 0) k.ino = st.st_ino;
  if (k.family == AF_INET || k.family == AF_INET6) {
    if (k.type == SOCK_STREAM && connected) {
      what += " connected to " + k.peer_addr + ":" + std::to_string(k.peer_port);
      if (!tcp_established)
        return Error::make(ErrorKind::System, what + ": an established TCP connection (checkpoint with --tcp-established)");
      ENVRUN_CHECK(tcp::dump(s.get(), k, out.send_queue, out.queued, what));
      out.repair = std::move(s);
      return ok();
    }
    if (k.type != SOCK_STREAM && k.type != SOCK_DGRAM) return Error::make(ErrorKind::System, what + ": this socket type cannot be checkpointed yet");
    if (!k.listening) return ok();
    auto q = listen_queue(pid, k.family, k.ino);
    k.backlog = q.backlog;
    // Connections whose handshake is done but that the app has not accepted would be lost
    // (their peers reset later): refused, as a retry soon finds them accepted.
    if (k.type == SOCK_STREAM && q.pending > 0)
      return Error::make(ErrorKind::System, what + ": listening, with " + std::to_string(q.pending) +
                                                " connection(s) not accepted yet: the accept queue cannot be checkpointed "
                                                "(try again once the app has accepted them)");
    return ok();
  }
  if (k.family == AF_UNIX) {
    if (k.listening) return ok();
    k.peer_ino = ENVRUN_TRY(unix_peer(pid, k.ino));
    if (k.type == SOCK_STREAM) out.queued = ENVRUN_TRY(peek_queue(s.get(), what));
    return ok();
  }
  return Error::make(ErrorKind::System, what + ": sockets of this family cannot be checkpointed yet");
}

Result<void> dump_epoll(pid_t pid, pid_t ns_pid, const proc::FdInfo& fd, OpenFile& f) {
  f.kind = OpenFile::Kind::Epoll;
  f.owner = ns_pid;
  std::istringstream in(fd.text);
  std::string line;
  while (std::getline(in, line)) {
    int tfd = 0;
    unsigned events = 0;
    unsigned long long data = 0;
    if (std::sscanf(line.c_str(), "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3) continue;
    kcmp_epoll_slot slot{uint32_t(fd.fd), uint32_t(tfd), 0};
    if (::syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, tfd, reinterpret_cast<unsigned long>(&slot)) != 0)
      return Error::make(ErrorKind::System, at(pid, fd.fd) + ": epoll watches fd " + std::to_string(tfd) +
                                                ", which is closed or holds another file now: cannot be checkpointed yet");
    f.epoll.push_back(EpollTarget{tfd, events, data});
  }
  return ok();
}

Result<void> dump_eventfd(const proc::FdInfo& fd, OpenFile& f) {
  f.kind = OpenFile::Kind::EventFd;
  std::istringstream in(fd.text);
  std::string line;
  bool seen = false;
  while (std::getline(in, line)) {
    unsigned long long v = 0;
    int sem = 0;
    if (std::sscanf(line.c_str(), "eventfd-count: %llx", &v) == 1) f.count = v, seen = true;
    if (std::sscanf(line.c_str(), "eventfd-semaphore: %d", &sem) == 1) f.semaphore = sem != 0;
  }
  if (!seen) return Error::make(ErrorKind::System, "fd " + std::to_string(fd.fd) + ": eventfd without eventfd-count in fdinfo");
  return ok();
}

Result<void> dump_timerfd(const proc::FdInfo& fd, OpenFile& f) {
  f.kind = OpenFile::Kind::TimerFd;
  auto& t = f.timer;
  std::istringstream in(fd.text);
  std::string line;
  int seen = 0;
  while (std::getline(in, line)) {
    long long a = 0, b = 0;
    unsigned long long u = 0;
    int i = 0;
    if (std::sscanf(line.c_str(), "clockid: %d", &i) == 1) t.clockid = i, ++seen;
    else if (std::sscanf(line.c_str(), "ticks: %llu", &u) == 1) t.ticks = u, ++seen;
    else if (std::sscanf(line.c_str(), "settime flags: %o", &i) == 1) t.settime_flags = i, ++seen;
    else if (std::sscanf(line.c_str(), "it_value: (%lld, %lld)", &a, &b) == 2) t.value_sec = a, t.value_nsec = b, ++seen;
    else if (std::sscanf(line.c_str(), "it_interval: (%lld, %lld)", &a, &b) == 2) t.interval_sec = a, t.interval_nsec = b, ++seen;
  }
  if (seen != 5) return Error::make(ErrorKind::System, "fd " + std::to_string(fd.fd) + ": timerfd fdinfo without its 5 fields");
  return ok();
}

Result<void> dump_signalfd(const proc::FdInfo& fd, OpenFile& f) {
  f.kind = OpenFile::Kind::SignalFd;
  std::istringstream in(fd.text);
  std::string line;
  while (std::getline(in, line)) {
    unsigned long long m = 0;
    if (std::sscanf(line.c_str(), "sigmask: %llx", &m) == 1) {
      f.sigmask = m;
      return ok();
    }
  }
  return Error::make(ErrorKind::System, "fd " + std::to_string(fd.fd) + ": signalfd fdinfo without sigmask");
}

}  // namespace envrun::ckpt
