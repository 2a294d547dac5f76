// open_sockets and fill_epolls (restore_sockets.hpp).
#include "ckpt/restore_sockets.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/sockets.hpp"
#include "ckpt/tcp_repair.hpp"

namespace envrun::ckpt {

namespace {

std::string name_of(const OpenFile& f) {
  const auto& k = f.sock;
  std::string peer = k.established ? " connected to " + k.peer_addr + ":" + std::to_string(k.peer_port) : "";
  return "file " + std::to_string(f.id) + " (" + sock::describe(k.family, k.type, k.addr, k.port) + peer + ")";
}

Result<void> set_options(int s, const OpenFile& f) {
  for (const auto& o : sock::kOptions) {
    auto it = f.sock.opts.find(o.name);
    if (it == f.sock.opts.end()) continue;
    int v = it->second;
    if (::setsockopt(s, o.level, o.opt, &v, sizeof v) < 0)
      return Error::sys("restore: " + name_of(f) + ": setsockopt " + o.name);
  }
  return ok();
}

bool wildcard(const SocketState& k) {
  return k.port == 0 && (k.addr.empty() || k.addr == "0.0.0.0" || k.addr == "::");
}

Result<UniqueFd> make_single(const OpenFile& f) {
  const auto& k = f.sock;
  UniqueFd s(::socket(k.family, k.type | SOCK_CLOEXEC, k.protocol));
  if (!s) return Error::sys("restore: " + name_of(f) + ": socket");
  ENVRUN_CHECK(set_options(s.get(), f));
  bool bound = k.family == AF_UNIX ? !k.addr.empty() : !wildcard(k);
  if (bound) {
    sockaddr_storage sa{};
    socklen_t len = 0;
    if (!sock::to_sockaddr(k.family, k.addr, k.port, sa, len)) return Error::make(ErrorKind::Config, "image: " + name_of(f) + ": bad address");
    if (k.family == AF_UNIX && k.addr[0] != '@') {  // a stale socket file of the dumped one
      struct stat st {};
      if (::lstat(k.addr.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(k.addr.c_str());
    }
    bool inet = k.family == AF_INET || k.family == AF_INET6;
    if (inet) sock::set_freebind(s.get(), k.family, 1);  // the address may arrive after the restore
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), len) < 0) return Error::sys("restore: " + name_of(f) + ": bind");
    if (inet) sock::set_freebind(s.get(), k.family, 0);
  }
  if (k.listening && ::listen(s.get(), k.backlog > 0 ? k.backlog : SOMAXCONN) < 0)
    return Error::sys("restore: " + name_of(f) + ": listen");
  if (!k.listening && !k.peer_addr.empty() && k.family != AF_UNIX) {
    sockaddr_storage sa{};
    socklen_t len = 0;
    if (!sock::to_sockaddr(k.family, k.peer_addr, k.peer_port, sa, len)) return Error::make(ErrorKind::Config, "image: " + name_of(f) + ": bad peer address");
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), len) < 0) return Error::sys("restore: " + name_of(f) + ": connect");
  }
  return s;
}

Result<void> refill(const Plan& p, const OpenFile& to, int writer) {
  const auto* data = p.data(to.sock.in_data_id);
  if (!data) return ok();
  size_t done = 0;
  while (done < data->size()) {
    ssize_t n = ::send(writer, data->data() + done, data->size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) return Error::sys("restore: " + name_of(to) + ": refill the queued bytes");
    done += size_t(n);
  }
  return ok();
}

const std::vector<uint8_t>& bytes(const Plan& p, uint64_t id) {
  static const std::vector<uint8_t> none;
  const auto* data = p.data(id);
  return data ? *data : none;
}

}  // namespace

Result<void> open_sockets(const Plan& p, std::map<uint64_t, UniqueFd>& out) {
  std::map<uint64_t, const OpenFile*> by_ino;
  for (const auto& f : p.files)
    if (f.kind == OpenFile::Kind::Socket) by_ino[f.sock.ino] = &f;
  for (const auto& f : p.files) {
    if (f.kind != OpenFile::Kind::Socket || out.count(f.id) || f.sock.established) continue;
    const auto& k = f.sock;
    auto peer = k.peer_ino ? by_ino.find(k.peer_ino) : by_ino.end();
    if (k.family == AF_UNIX && peer != by_ino.end()) {
      int sv[2];
      if (::socketpair(AF_UNIX, k.type | SOCK_CLOEXEC, 0, sv) < 0) return Error::sys("restore: " + name_of(f) + ": socketpair");
      out[f.id].reset(sv[0]);
      out[peer->second->id].reset(sv[1]);
      ENVRUN_CHECK(set_options(sv[0], f));
      ENVRUN_CHECK(set_options(sv[1], *peer->second));
      ENVRUN_CHECK(refill(p, f, sv[1]));
      ENVRUN_CHECK(refill(p, *peer->second, sv[0]));
      continue;
    }
    out[f.id] = ENVRUN_TRY(make_single(f));
  }
  // Connections last: they share their port with a listener, which binds first.
  for (const auto& f : p.files) {
    if (f.kind != OpenFile::Kind::Socket || !f.sock.established) continue;
    int fd = ENVRUN_TRY(tcp::restore(f.sock, bytes(p, f.sock.tcp.send_data_id), bytes(p, f.sock.in_data_id), "restore: " + name_of(f)));
    out[f.id].reset(fd);
  }
  for (const auto& f : p.files)
    if (f.kind == OpenFile::Kind::Socket && f.sock.established)
      ENVRUN_CHECK(tcp::resume(out.at(f.id).get(), f.sock, bytes(p, f.sock.tcp.send_data_id), "restore: " + name_of(f)));
  for (const auto& f : p.files)
    if (f.kind == OpenFile::Kind::Socket) (void)::fcntl(out.at(f.id).get(), F_SETFL, f.flags & ~O_ACCMODE);
  return ok();
}

Result<void> fill_epolls(const Plan& p, const ProcessCore& core) {
  for (const auto& f : p.files) {
    if (f.kind != OpenFile::Kind::Epoll || f.owner != core.pid) continue;
    int epfd = -1;
    for (const auto& e : core.fds)
      if (e.file == f.id) epfd = e.fd;
    if (epfd < 0) return Error::make(ErrorKind::Config, "image: epoll file " + std::to_string(f.id) + ": not open in its owner pid " + std::to_string(core.pid));
    for (const auto& t : f.epoll) {
      epoll_event ev{};
      ev.events = t.events;
      ev.data.u64 = t.data;
      if (::epoll_ctl(epfd, EPOLL_CTL_ADD, t.fd, &ev) < 0)
        return Error::sys("epoll fd " + std::to_string(epfd) + ": watch fd " + std::to_string(t.fd));
    }
  }
  return ok();
}

}  // namespace envrun::ckpt
