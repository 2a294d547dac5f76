// The API's audit log (agent/api/audit.hpp): one JSON object per line in a fixed field
// order, mode 0600, tail() returns the last N lines oldest first, concurrent writers never
// interleave a line.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "agent/api/audit.hpp"
#include "kernel/fs.hpp"

using namespace envrun::agent::api;

TEST_CASE("audit lines: fields, mode, tail", "[api]") {
  char t[] = "/tmp/envrun-unit-audit.XXXXXX";
  std::string dir = ::mkdtemp(t);
  auto a = AuditLog::open(dir + "/audit.log");
  REQUIRE(a);
  std::unique_ptr<AuditLog> log(*a);
  REQUIRE(log->write({"ci", "unix", "POST", "/v1/instances", 201, "created w1"}));
  REQUIRE(log->write({"", "10.0.0.1:5000", "GET", "/v1/tokens", 401, "missing bearer token"}));
  REQUIRE(log->write({"ro", "unix", "POST", "/v1/instances/w1/stop", 403, "quote \" and\nnewline"}));
  struct stat st{};
  REQUIRE(::stat(log->path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto last = log->tail(2);
  REQUIRE(last);
  REQUIRE(last->size() == 2);
  auto j = nlohmann::json::parse((*last)[0]);
  CHECK(j["status"] == 401);
  CHECK(j["token"] == "");
  CHECK(j["remote"] == "10.0.0.1:5000");
  auto k = nlohmann::json::parse((*last)[1]);
  CHECK(k["message"] == "quote \" and\nnewline");  // escaped: still one line
  auto text = envrun::fs::read_file(log->path());
  REQUIRE(text);
  CHECK(text->rfind("{\"time\":", 0) == 0);
  CHECK(text->find("\"token\":\"ci\",\"remote\":\"unix\",\"method\":\"POST\",\"path\":\"/v1/instances\",\"status\":201,\"message\":\"created w1\"}") !=
        std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("audit lines from many threads stay whole", "[api]") {
  char t[] = "/tmp/envrun-unit-audit.XXXXXX";
  std::string dir = ::mkdtemp(t);
  std::unique_ptr<AuditLog> log(*AuditLog::open(dir + "/audit.log"));
  std::vector<std::thread> th;
  for (int i = 0; i < 8; ++i)
    th.emplace_back([&log, i] {
      for (int n = 0; n < 200; ++n)
        (void)log->write({"t" + std::to_string(i), "unix", "DELETE", "/v1/instances/x", 200, std::string(300, char('a' + i))});
    });
  for (auto& x : th) x.join();
  auto all = log->tail(100000);
  REQUIRE(all);
  CHECK(all->size() == 1600);
  for (const auto& l : *all) CHECK(!nlohmann::json::parse(l, nullptr, false).is_discarded());
  std::filesystem::remove_all(dir);
}
