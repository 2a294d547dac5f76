// The pieces of an upgrade that run without containers: modes, the HTTP health check
// against a socket of our own, which files a process has in use, and the rootfs comparison.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>

#include "agent/files_in_use.hpp"
#include "agent/health.hpp"
#include "agent/tree_copy.hpp"
#include "agent/upgrade.hpp"
#include "kernel/fd.hpp"
#include "kernel/fs.hpp"

using namespace envrun;
using namespace envrun::agent;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/unit_library_upgrade.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { (void)fs::remove_tree(path); }
};

// A listening socket on 127.0.0.1 that answers one connection with `answer`.
struct OneShotServer {
  UniqueFd fd;
  int port = 0;
  std::thread t;
  std::string request;
  explicit OneShotServer(std::string answer) {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    REQUIRE(::listen(fd.get(), 1) == 0);
    t = std::thread([this, answer] {
      UniqueFd c(::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) return;
      char buf[1024];
      ssize_t n = ::read(c.get(), buf, sizeof buf);
      if (n > 0) request.assign(buf, size_t(n));
      if (!answer.empty()) (void)!::write(c.get(), answer.data(), answer.size());
    });
  }
  ~OneShotServer() {
    if (t.joinable()) t.join();
  }
  std::string url(const std::string& path = "/health") const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
};

}  // namespace

TEST_CASE("upgrade modes parse and print", "[upgrade]") {
  CHECK(*parse_upgrade_mode("restart") == UpgradeMode::Restart);
  CHECK(*parse_upgrade_mode("checkpoint") == UpgradeMode::Checkpoint);
  CHECK(*parse_upgrade_mode("auto") == UpgradeMode::Auto);
  auto bad = parse_upgrade_mode("live");
  REQUIRE(!bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains("live") && Catch::Contains("auto, restart or checkpoint"));
  CHECK(std::string(upgrade_mode_name(UpgradeMode::Checkpoint)) == "checkpoint");
}

TEST_CASE("http health check: the status code of one GET", "[upgrade]") {
  SECTION("200 with the path and Host sent") {
    OneShotServer s("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    auto code = http_get_status(s.url("/healthz?x=1"), 2000);
    REQUIRE(code.ok());
    CHECK(*code == 200);
    s.t.join();
    CHECK_THAT(s.request, Catch::StartsWith("GET /healthz?x=1 HTTP/1.0\r\n") && Catch::Contains("Host: 127.0.0.1"));
  }
  SECTION("503 is reported as such") {
    OneShotServer s("HTTP/1.0 503 Service Unavailable\r\n\r\n");
    auto code = http_get_status(s.url(), 2000);
    REQUIRE(code.ok());
    CHECK(*code == 503);
  }
  SECTION("a server that says nothing: not an HTTP answer") {
    OneShotServer s("");
    auto code = http_get_status(s.url(), 2000);
    REQUIRE(!code.ok());
    CHECK_THAT(code.error().message, Catch::Contains("not an HTTP answer"));
  }
  SECTION("bad URLs and refused connections") {
    CHECK_THAT(http_get_status("https://127.0.0.1/", 500).error().message, Catch::Contains("only http://"));
    CHECK_THAT(http_get_status("http:///x", 500).error().message, Catch::Contains("no host"));
    OneShotServer s("");
    std::string url = "http://127.0.0.1:" + std::to_string(s.port) + "/";
    ::shutdown(s.fd.get(), SHUT_RDWR);
    s.fd.reset();  // nothing listens on that port any more
    s.t.join();
    auto r = http_get_status(url, 1000);
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("127.0.0.1:" + std::to_string(s.port)));
  }
}

TEST_CASE("files_in_use: what this process maps and holds open", "[upgrade]") {
  TempDir t;
  REQUIRE(fs::write_file(t.path + "/held", "x", O_CREAT));
  UniqueFd held(::open((t.path + "/held").c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(held);
  auto used = files_in_use(::getpid(), "");
  REQUIRE(used.ok());
  char exe[4096] = {};
  REQUIRE(::readlink("/proc/self/exe", exe, sizeof exe - 1) > 0);
  CHECK(used->count(exe) == 1);
  CHECK(used->count(t.path + "/held") == 1);
  // Seen below a root: the paths become relative to it.
  auto below = files_in_use(::getpid(), t.path);
  REQUIRE(below.ok());
  CHECK(below->count("/held") == 1);
  CHECK(below->count(t.path + "/held") == 0);
}

TEST_CASE("changed_files: only used paths of the old rootfs whose bytes differ", "[upgrade]") {
  TempDir t;
  std::string a = t.path + "/a", b = t.path + "/b";
  REQUIRE(fs::mkdir_p(a + "/bin"));
  REQUIRE(fs::write_file(a + "/bin/same", "same bytes", O_CREAT));
  REQUIRE(fs::write_file(a + "/bin/edited", "old bytes!", O_CREAT));
  REQUIRE(fs::write_file(a + "/bin/grown", "short", O_CREAT));
  REQUIRE(fs::write_file(a + "/bin/gone", "x", O_CREAT));
  REQUIRE(fs::write_file(a + "/bin/unused", "x", O_CREAT));
  auto copied = copy_tree(a, b);
  REQUIRE(copied.ok());
  CHECK(copied->files == 5);
  REQUIRE(fs::write_file(b + "/bin/edited", "new bytes!", O_TRUNC));  // same size, other bytes
  REQUIRE(fs::write_file(b + "/bin/grown", "longer", O_TRUNC));
  REQUIRE(fs::write_file(b + "/bin/unused", "changed but unused", O_TRUNC));
  REQUIRE(::unlink((b + "/bin/gone").c_str()) == 0);
  std::set<std::string> used{"/bin/same", "/bin/edited", "/bin/grown", "/bin/gone", "/dev/null", "/not/in/rootfs"};
  auto changed = changed_files(used, a, b);
  REQUIRE(changed.ok());
  CHECK(*changed == std::vector<std::string>{"/bin/edited", "/bin/gone", "/bin/grown"});
  auto none = changed_files({"/bin/same"}, a, b);
  REQUIRE(none.ok());
  CHECK(none->empty());
}
