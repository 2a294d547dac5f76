// TCP repair mode (tcp_repair.hpp).
#include "ckpt/tcp_repair.hpp"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "ckpt/sockets.hpp"
#include "kernel/fd.hpp"

namespace envrun::ckpt::tcp {

namespace {

Result<void> set(int s, int opt, int v, const std::string& what, const char* name) {
  if (::setsockopt(s, IPPROTO_TCP, opt, &v, sizeof v) < 0) return Error::sys(what + ": " + name);
  return ok();
}

template <class T>
Result<T> get(int s, int opt, const std::string& what, const char* name) {
  T v{};
  socklen_t len = sizeof v;
  if (::getsockopt(s, IPPROTO_TCP, opt, &v, &len) < 0) return Error::sys(what + ": " + name);
  return v;
}

Result<uint32_t> queue_len(int s, unsigned long req, const std::string& what) {
  int n = 0;
  if (::ioctl(s, req, &n) < 0) return Error::sys(what + ": queue length");
  return uint32_t(n);
}

// The bytes of one queue (selected with TCP_REPAIR_QUEUE), left in place.
Result<std::vector<uint8_t>> peek(int s, int queue, uint32_t len, uint32_t& seq, const std::string& what) {
  ENVRUN_CHECK(set(s, TCP_REPAIR_QUEUE, queue, what, "TCP_REPAIR_QUEUE"));
  seq = ENVRUN_TRY(get<uint32_t>(s, TCP_QUEUE_SEQ, what, "TCP_QUEUE_SEQ"));
  std::vector<uint8_t> out(len);
  if (len == 0) return out;
  ssize_t n = ::recv(s, out.data(), out.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && errno != EAGAIN) return Error::sys(what + ": read the " + (queue == TCP_SEND_QUEUE ? "send" : "receive") + " queue");
  out.resize(n > 0 ? size_t(n) : 0);  // fewer: acknowledged meanwhile (the caller reads again)
  return out;
}

// Windows, queue lengths and queues in one read. The tree is frozen but its kernel still
// takes the peer's ACKs (the send queue shrinks, unsent bytes leave) and data (the receive
// queue grows) unless the connection is fenced: a read counts only if the lengths, the
// windows and the receive sequence number did not change during it (snapshot_held).
Result<void> snapshot(int s, SocketState& k, std::vector<uint8_t>& send_queue, std::vector<uint8_t>& recv_queue,
                      const std::string& what) {
  auto& t = k.tcp;
  auto w = ENVRUN_TRY(get<tcp_repair_window>(s, TCP_REPAIR_WINDOW, what, "TCP_REPAIR_WINDOW"));
  t.snd_wl1 = w.snd_wl1, t.snd_wnd = w.snd_wnd, t.max_window = w.max_window, t.rcv_wnd = w.rcv_wnd, t.rcv_wup = w.rcv_wup;
  t.inq_len = ENVRUN_TRY(queue_len(s, SIOCINQ, what));
  t.outq_len = ENVRUN_TRY(queue_len(s, SIOCOUTQ, what));
  t.unsent_len = ENVRUN_TRY(queue_len(s, SIOCOUTQNSD, what));
  send_queue = ENVRUN_TRY(peek(s, TCP_SEND_QUEUE, t.outq_len, t.snd_seq, what));
  recv_queue = ENVRUN_TRY(peek(s, TCP_RECV_QUEUE, t.inq_len, t.rcv_seq, what));
  return ok();
}

Result<bool> snapshot_held(int s, const SocketState& k, const std::vector<uint8_t>& send_queue,
                           const std::vector<uint8_t>& recv_queue, const std::string& what) {
  const auto& t = k.tcp;
  if (send_queue.size() != t.outq_len || recv_queue.size() != t.inq_len) return false;
  auto w = ENVRUN_TRY(get<tcp_repair_window>(s, TCP_REPAIR_WINDOW, what, "TCP_REPAIR_WINDOW"));
  uint32_t rcv_seq = ENVRUN_TRY(get<uint32_t>(s, TCP_QUEUE_SEQ, what, "TCP_QUEUE_SEQ"));  // the receive queue is selected
  uint32_t inq = ENVRUN_TRY(queue_len(s, SIOCINQ, what)), outq = ENVRUN_TRY(queue_len(s, SIOCOUTQ, what));
  uint32_t unsent = ENVRUN_TRY(queue_len(s, SIOCOUTQNSD, what));
  return inq == t.inq_len && outq == t.outq_len && unsent == t.unsent_len && rcv_seq == t.rcv_seq &&
         w.snd_wl1 == t.snd_wl1 && w.snd_wnd == t.snd_wnd && w.rcv_wnd == t.rcv_wnd && w.rcv_wup == t.rcv_wup;
}

Result<void> fill(int s, int queue, const uint8_t* data, size_t len, const std::string& what) {
  if (queue) ENVRUN_CHECK(set(s, TCP_REPAIR_QUEUE, queue, what, "TCP_REPAIR_QUEUE"));
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::send(s, data + done, len - done, MSG_NOSIGNAL | (queue ? 0 : MSG_DONTWAIT));
    if (n < 0) return Error::sys(what + ": refill the " + (queue == TCP_RECV_QUEUE ? "receive" : "send") + " queue");
    done += size_t(n);
  }
  return ok();
}

}  // namespace

Result<void> dump(int s, SocketState& k, std::vector<uint8_t>& send_queue, std::vector<uint8_t>& recv_queue,
                  const std::string& what) {
  auto& t = k.tcp;
  ENVRUN_CHECK(set(s, TCP_REPAIR, TCP_REPAIR_ON, what, "TCP_REPAIR (needs CAP_NET_ADMIN)"));
  auto info = ENVRUN_TRY(get<tcp_info>(s, TCP_INFO, what, "TCP_INFO"));
  if (info.tcpi_state != TCP_ESTABLISHED)
    return Error::make(ErrorKind::System, what + ": TCP state " + std::to_string(info.tcpi_state) +
                                              ": only established connections can be checkpointed (closing ones cannot yet)");
  k.established = true;
  t.options = info.tcpi_options;
  t.snd_wscale = info.tcpi_snd_wscale;
  t.rcv_wscale = info.tcpi_rcv_wscale;
  t.mss = ENVRUN_TRY(get<uint32_t>(s, TCP_MAXSEG, what, "TCP_MAXSEG"));
  if (t.options & TCPI_OPT_TIMESTAMPS) t.timestamp = ENVRUN_TRY(get<uint32_t>(s, TCP_TIMESTAMP, what, "TCP_TIMESTAMP"));
  for (int attempt = 0;; ++attempt) {
    ENVRUN_CHECK(snapshot(s, k, send_queue, recv_queue, what));
    if (ENVRUN_TRY(snapshot_held(s, k, send_queue, recv_queue, what))) return ok();
    if (attempt == 50)
      return Error::make(ErrorKind::System, what + ": its queues kept changing while the app was frozen (the peer is "
                                                "still talking to it): fence the connection first (migrate --before-stop)");
    ::usleep(2000);
  }
}

void end_repair(int s) {
  int off = TCP_REPAIR_OFF;
  (void)::setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &off, sizeof off);
}

Result<int> restore(const SocketState& k, const std::vector<uint8_t>& send_queue, const std::vector<uint8_t>& recv_queue,
                    const std::string& what) {
  const auto& t = k.tcp;
  if (send_queue.size() != t.outq_len || recv_queue.size() != t.inq_len)
    return Error::make(ErrorKind::Config, "image: " + what + ": queue sizes do not match the saved lengths");
  UniqueFd s(::socket(k.family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!s) return Error::sys(what + ": socket");
  int fd = s.get();
  ENVRUN_CHECK(set(fd, TCP_REPAIR, TCP_REPAIR_ON, what, "TCP_REPAIR (needs CAP_NET_ADMIN)"));
  ENVRUN_CHECK(set(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, what, "TCP_REPAIR_QUEUE"));
  ENVRUN_CHECK(set(fd, TCP_QUEUE_SEQ, int(t.snd_seq - t.outq_len), what, "TCP_QUEUE_SEQ (send)"));
  ENVRUN_CHECK(set(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, what, "TCP_REPAIR_QUEUE"));
  ENVRUN_CHECK(set(fd, TCP_QUEUE_SEQ, int(t.rcv_seq - t.inq_len), what, "TCP_QUEUE_SEQ (receive)"));
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (!sock::to_sockaddr(k.family, k.addr, k.port, sa, len)) return Error::make(ErrorKind::Config, "image: " + what + ": bad address");
  sock::set_freebind(fd, k.family, 1, true);  // the address may arrive after the restore
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) return Error::sys(what + ": bind");
  if (!sock::to_sockaddr(k.family, k.peer_addr, k.peer_port, sa, len)) return Error::make(ErrorKind::Config, "image: " + what + ": bad peer");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) return Error::sys(what + ": connect in repair mode");
  sock::set_freebind(fd, k.family, 0, true);
  std::vector<tcp_repair_opt> opts{{TCPOPT_MAXSEG, t.mss}};
  if (t.options & TCPI_OPT_WSCALE) opts.push_back({TCPOPT_WINDOW, t.snd_wscale | (t.rcv_wscale << 16)});
  if (t.options & TCPI_OPT_SACK) opts.push_back({TCPOPT_SACK_PERMITTED, 0});
  if (t.options & TCPI_OPT_TIMESTAMPS) opts.push_back({TCPOPT_TIMESTAMP, 0});
  if (::setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts.data(), socklen_t(opts.size() * sizeof opts[0])) < 0)
    return Error::sys(what + ": TCP_REPAIR_OPTIONS");
  if (t.options & TCPI_OPT_TIMESTAMPS) ENVRUN_CHECK(set(fd, TCP_TIMESTAMP, int(t.timestamp), what, "TCP_TIMESTAMP"));
  ENVRUN_CHECK(fill(fd, TCP_RECV_QUEUE, recv_queue.data(), recv_queue.size(), what));
  size_t sent = t.outq_len - t.unsent_len;  // sent, not yet acknowledged: queued as already sent
  ENVRUN_CHECK(fill(fd, TCP_SEND_QUEUE, send_queue.data(), sent, what));
  // The windows last: the kernel checks them against rcv_nxt, which the receive queue moved.
  tcp_repair_window w{t.snd_wl1, t.snd_wnd, t.max_window, t.rcv_wnd, t.rcv_wup};
  if (::setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof w) < 0) return Error::sys(what + ": TCP_REPAIR_WINDOW");
  return s.release();
}

Result<void> resume(int fd, const SocketState& k, const std::vector<uint8_t>& send_queue, const std::string& what) {
  size_t sent = k.tcp.outq_len - k.tcp.unsent_len;
  ENVRUN_CHECK(set(fd, TCP_REPAIR, TCP_REPAIR_OFF, what, "TCP_REPAIR off"));
  return fill(fd, 0, send_queue.data() + sent, send_queue.size() - sent, what);  // never sent: sent now
}

}  // namespace envrun::ckpt::tcp
