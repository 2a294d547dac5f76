// serve_http: httplib servers wired to the Router, the audit log and the console.
#include "agent/api/http_server.hpp"

#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#ifdef ENVRUN_API_CONSOLE
#include "agent/console/console.hpp"
#endif
#include "kernel/fd.hpp"

namespace envrun::agent::api {

namespace {

// What the handler learnt about the request, for the logger that runs after it on the
// same thread (httplib calls the logger once the response is written).
struct AuditNote {
  bool set = false;
  std::string token, message;
};
thread_local AuditNote t_note;

std::string remote_of(const httplib::Request& q) {
  return q.remote_addr.empty() ? "unix" : q.remote_addr + ":" + std::to_string(q.remote_port);
}

void send(httplib::Response& res, const Reply& r) {
  res.status = r.status;
  if (!r.raw.empty() || !r.content_type.empty()) res.set_content(r.raw, r.content_type.c_str());
  else res.set_content(r.body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", "application/json");
}

void handle(const Router& router, const httplib::Request& q, httplib::Response& res) {
  if (q.method == "GET" && (q.path == "/" || q.path == "/ui" || q.path.rfind("/ui/", 0) == 0)) {
#ifdef ENVRUN_API_CONSOLE
    if (auto a = console_asset(q.path)) {
      res.set_content(std::string(a->first), std::string(a->second).c_str());
      return;
    }
#endif
    send(res, error_reply(404, q.path + ": no such file"));
    return;
  }
  Call c;
  c.method = q.method;
  c.path = q.path;
  c.remote = remote_of(q);
  for (const auto& [k, v] : q.params) c.query.emplace(k, v);
  c.authorization = q.get_header_value("Authorization");
  c.body = q.body;
  std::string token;
  Reply r = router.dispatch(c, token);
  t_note = {true, token, r.message};
  send(res, r);
}

void audit(ApiContext& ctx, const httplib::Request& q, const httplib::Response& res) {
  AuditNote note = std::exchange(t_note, {});
  if ((q.method == "GET" || q.method == "HEAD") && res.status != 401 && res.status != 403) return;
  std::string msg = note.message;
  if (msg.empty() && res.status >= 400) {
    auto j = json::parse(res.body, nullptr, false);
    msg = j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "error";
  }
  if (msg.empty()) msg = "ok";
  if (auto w = ctx.audit->write({note.token, remote_of(q), q.method, q.path, res.status, msg}); !w)
    ctx.log("audit: " + w.error().message);
}

std::string status_text(int status) {
  switch (status) {
    case 400: return "bad request";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 414: return "request URI too long";
    case 416: return "range not satisfiable";
    default: return "HTTP status " + std::to_string(status);
  }
}

void configure(httplib::Server& s, ApiContext& ctx, const Router& router, const HttpOptions& o) {
  int threads = o.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  s.set_payload_max_length(o.max_body);
  s.set_keep_alive_max_count(1000);
  s.set_keep_alive_timeout(5);
  s.set_read_timeout(30);
  auto h = [&router](const httplib::Request& q, httplib::Response& res) { handle(router, q, res); };
  // Before any body is read: httplib 0.11 applies the payload limit to Content-Length
  // bodies only, so a chunked body (unbounded) is refused outright.
  s.set_pre_routing_handler([](const httplib::Request& q, httplib::Response& res) {
    if (q.get_header_value("Transfer-Encoding").empty()) return httplib::Server::HandlerResponse::Unhandled;
    send(res, error_reply(411, "chunked request bodies are not accepted: send Content-Length (at most 1 MiB)"));
    res.set_header("Connection", "close");  // the unread chunks must not be taken for a request
    return httplib::Server::HandlerResponse::Handled;
  });
  s.Get(".*", h);
  s.Post(".*", h);
  s.Put(".*", h);
  s.Delete(".*", h);
  s.Patch(".*", h);
  size_t max = o.max_body;
  s.set_error_handler(httplib::Server::HandlerWithResponse([max](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string why = res.status == 413 ? "request body larger than " + std::to_string(max) + " bytes"
                                        : status_text(res.status);
    res.set_content(json{{"error", why}}.dump() + "\n", "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_logger([&ctx](const httplib::Request& q, const httplib::Response& res) { audit(ctx, q, res); });
}

// A socket file left by an agent that died is removed; one that answers is refused.
Result<void> clear_stale_socket(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) return ok();
  if (!S_ISSOCK(st.st_mode)) return Error::make(ErrorKind::State, path + ": exists and is not a socket");
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return Error::make(ErrorKind::Usage, path + ": socket path too long");
  std::memcpy(a.sun_path, path.c_str(), path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0)
    return Error::make(ErrorKind::State, path + ": another agent serves this socket");
  if (::unlink(path.c_str()) != 0) return Error::sys("unlink " + path);
  return ok();
}

}  // namespace

Result<void> serve_http(ApiContext& ctx, const HttpOptions& o) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // the workers inherit it
  ::signal(SIGPIPE, SIG_IGN);
  Router router(ctx.tokens);
  add_all_routes(router, ctx);

  std::unique_ptr<httplib::Server> plain;
  std::unique_ptr<httplib::SSLServer> tls;
  std::vector<std::thread> threads;
  auto stop_all = [&] {
    if (plain) plain->stop();
    if (tls) tls->stop();
    for (auto& t : threads) t.join();
  };
  if (!o.unix_path.empty()) {
    ENVRUN_CHECK(clear_stale_socket(o.unix_path));
    plain = std::make_unique<httplib::Server>();
    configure(*plain, ctx, router, o);
    plain->set_address_family(AF_UNIX);
    mode_t old = ::umask(0117);
    bool bound = plain->bind_to_port(o.unix_path, 80);
    ::umask(old);
    if (!bound) return Error::sys("bind " + o.unix_path);
    ::chmod(o.unix_path.c_str(), 0660);
    threads.emplace_back([&] { plain->listen_after_bind(); });
    ctx.log("API on unix:" + o.unix_path);
  }
  if (!o.tcp_host.empty()) {
    tls = std::make_unique<httplib::SSLServer>(o.cert.c_str(), o.key.c_str());
    if (!tls->is_valid()) {
      stop_all();
      return Error::make(ErrorKind::Usage, "--tls-cert " + o.cert + " / --tls-key " + o.key + ": not a usable PEM certificate and key");
    }
    configure(*tls, ctx, router, o);
    if (!tls->bind_to_port(o.tcp_host, o.tcp_port)) {
      int e = errno;
      stop_all();
      return Error::sys("bind " + o.tcp_host + ":" + std::to_string(o.tcp_port), e);
    }
    threads.emplace_back([&] { tls->listen_after_bind(); });
    ctx.log("API on https://" + o.tcp_host + ":" + std::to_string(o.tcp_port));
  }
  int sig = 0;
  ::sigwait(&stop, &sig);
  ctx.log(std::string("stopping (") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ")");
  stop_all();
  if (!o.unix_path.empty()) ::unlink(o.unix_path.c_str());
  return ok();
}

// The routes as "METHOD PATTERN" lines (envrun serve --list-routes; t_api_openapi).
std::vector<std::string> route_list(ApiContext& ctx) {
  Router router(ctx.tokens);
  add_all_routes(router, ctx);
  std::vector<std::string> out;
  for (const auto& r : router.routes()) out.push_back(r.method + " " + r.pattern);
  return out;
}

}  // namespace envrun::agent::api
