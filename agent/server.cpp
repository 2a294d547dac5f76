// serve(): signalfd + listening socket in one poll loop; a thread per connection.
#include "agent/server.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include "agent/session.hpp"
#include "kernel/fs.hpp"

namespace envrun::agent {

namespace {

constexpr size_t kMaxConnections = 16;

// SIGTERM/SIGINT blocked and read from a signalfd for as long as it lives.
class StopSignals {
 public:
  StopSignals() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    ::sigprocmask(SIG_BLOCK, &s, &old_);
    fd_.reset(::signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK));
  }
  ~StopSignals() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }
  int fd() const { return fd_.get(); }
  // The pending signal's name ("" if none); stays pending for the other waits.
  std::string pending() const {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return "";
    signalfd_siginfo si{};
    if (::read(fd_.get(), &si, sizeof si) != sizeof si) return "";
    return si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT";
  }

 private:
  sigset_t old_;
  UniqueFd fd_;
};

}  // namespace

Result<void> serve(const ServeOptions& o) {
  const auto& cfg = o.cfg;
  auto log = [&](const std::string& s) { if (cfg.log) cfg.log(s); };
  StopSignals stop;
  if (stop.fd() < 0) return Error::sys("signalfd");
  if (fs::exists(cfg.root.images())) (void)delete_uncommitted(cfg);  // before prepare() sweeps images/
  int swept = ENVRUN_TRY(cfg.root.prepare());
  if (swept) log("removed " + std::to_string(swept) + " leftovers of interrupted migrations");
  auto lsock = ENVRUN_TRY(ha::listen_on(o.listen));
  log("listening on " + o.listen.text + " (root " + cfg.root.dir + ")");
  if (o.drain) ENVRUN_CHECK(o.drain->start(stop.fd()));
  ::signal(SIGPIPE, SIG_IGN);
  // Every connection on a thread of its own: a handshake with a slow peer or a drain (its
  // moves take minutes) no longer holds the accept loop. Incoming migrations still take
  // turns (session.cpp). Threads inherit this one's mask: SIGTERM and SIGINT stay blocked.
  struct Conn {
    std::thread th;
    std::shared_ptr<std::atomic<bool>> done;
  };
  struct Conns : std::vector<Conn> {
    ~Conns() {  // every way out of here: no thread outlives what it refers to
      for (auto& c : *this) c.th.join();
    }
  } conns;
  auto reap = [&](bool all) {
    for (auto it = conns.begin(); it != conns.end();) {
      if (all || it->done->load()) {
        it->th.join();
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  };
  for (;;) {
    pollfd p[2] = {{lsock.get(), POLLIN, 0}, {stop.fd(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 && errno != EINTR) return Error::sys("poll");
    if (p[1].revents) break;
    if (!(p[0].revents & POLLIN)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    UniqueFd conn(::accept4(lsock.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
    if (!conn) continue;
    std::string who = ha::endpoint_text(reinterpret_cast<sockaddr*>(&peer));
    reap(false);
    if (conns.size() >= kMaxConnections) {
      log("connection from " + who + " refused: " + std::to_string(kMaxConnections) + " connections are being served");
      continue;
    }
    log("connection from " + who);
    auto done = std::make_shared<std::atomic<bool>>(false);
    auto serve_one = [&cfg, &log, cancel = stop.fd(), who, done](UniqueFd sock) {
      ha::ChannelOptions co;
      co.max_payload = cfg.limits.max_frame;
      co.timeout_ms = cfg.timeout_ms;
      co.cancel_fd = cancel;
      co.peer = who;
      auto ch = ha::Channel::server(std::move(sock), cfg.psk, co);
      if (!ch) {
        log(ch.error().message);
      } else {
        auto r = serve_session(*ch, cfg);
        log(r ? *r : "failed: " + r.error().message);
      }
      done->store(true);
    };
    try {
      conns.push_back({std::thread(serve_one, std::move(conn)), done});
    } catch (const std::system_error& e) {
      log("connection from " + who + " dropped: no thread for it: " + e.what());
    }
  }
  reap(true);  // their waits end on the pending signal (the cancel fd); a running restore is waited for
  std::string sig = stop.pending();
  log("stopping (" + sig + ")");
  if (o.drain) o.drain->stop(sig == "SIGTERM");
  return ok();
}

}  // namespace envrun::agent
