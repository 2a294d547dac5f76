// ha::parse_endpoint: numeric IPv4/IPv6, localhost, and host names through the name
// service. The name cases run in a child with its own mount namespace where /etc/hosts
// and /etc/nsswitch.conf ("hosts: files") are files of the test's.
#include <arpa/inet.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <string>

#include "ha/net.hpp"

using namespace envrun::ha;

namespace {

std::string addr_of(const Endpoint& e) { return endpoint_text(reinterpret_cast<const sockaddr*>(&e.addr)); }

// Runs `check` (its return: the exit code) in a child whose /etc/hosts is `hosts`.
int with_hosts_file(const std::string& hosts, const std::function<int()>& check) {
  char dir[] = "/tmp/envrun-net-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  std::string d = dir;
  std::ofstream(d + "/hosts") << hosts;
  std::ofstream(d + "/nsswitch.conf") << "hosts: files\n";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(90);
    if (::mount((d + "/hosts").c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) ::_exit(91);
    if (::mount((d + "/nsswitch.conf").c_str(), "/etc/nsswitch.conf", nullptr, MS_BIND, nullptr) != 0) ::_exit(92);
    ::_exit(check());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::unlink((d + "/hosts").c_str());
  ::unlink((d + "/nsswitch.conf").c_str());
  ::rmdir(dir);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("numeric endpoints and localhost", "[ha][net]") {
  auto a = parse_endpoint("10.1.2.3:7070");
  REQUIRE(a.ok());
  CHECK(addr_of(*a) == "10.1.2.3:7070");
  auto b = parse_endpoint("[fd00::5]:80");
  REQUIRE(b.ok());
  CHECK(addr_of(*b) == "[fd00::5]:80");
  auto c = parse_endpoint("localhost:9");
  REQUIRE(c.ok());
  CHECK(addr_of(*c) == "127.0.0.1:9");
  auto d = parse_endpoint(":9");
  REQUIRE(d.ok());
  CHECK(addr_of(*d) == "0.0.0.0:9");
}

TEST_CASE("bad endpoints are refused with the reason", "[ha][net]") {
  for (const char* s : {"10.1.2.3", "10.1.2.3:0", "10.1.2.3:70000", "[fd00::5:80", "h:x"}) {
    auto e = parse_endpoint(s);
    INFO(s);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().message.find(s) != std::string::npos);
  }
}

TEST_CASE("host names are resolved through /etc/hosts", "[ha][net]") {
  int rc = with_hosts_file("10.9.8.7 agent-b.example agent-b\nfd00::42 agent-six\n", [] {
    auto a = parse_endpoint("agent-b:7070");
    if (!a.ok() || addr_of(*a) != "10.9.8.7:7070") return 1;
    auto f = parse_endpoint("agent-b.example:1");
    if (!f.ok() || addr_of(*f) != "10.9.8.7:1") return 2;
    auto missing = parse_endpoint("no-such-agent:7070");
    if (missing.ok() || missing.error().message.find("host \"no-such-agent\" not found") == std::string::npos) return 3;
    return 0;
  });
  CHECK(rc == 0);
}
