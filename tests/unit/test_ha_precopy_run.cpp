// migrate() with pre-copy rounds (ha/migrate_source.hpp) against a scripted agent on
// 127.0.0.1 and a fake source host whose dirty set shrinks per round: the rounds go as
// "full" then "pages" images, each checkpoint names its parent (../rR-1) and leaves the
// tree running but the final one; a stop rule ends pre-copy; an agent lost during a
// pre-copy round leaves the app running (no rollback); one lost after the final round
// gets the app restored here from the last round, with every round of the chain kept.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "ha/content_store.hpp"
#include "ha/image_transfer.hpp"
#include "ha/migrate_source.hpp"

using namespace envrun;
using namespace envrun::ha;

namespace {

// Round R's image: "image R" and some bytes; its pages: pages[R] (the last one repeats).
struct RoundsHost : SourceHost {
  std::vector<uint64_t> pages;
  std::vector<CheckpointSpec> specs;
  bool running = true;
  std::vector<std::string> released;  // "kill" / "resume" of the held tree, in order
  bool held = false;
  uint64_t frozen_us = 30000;
  Result<void> start_checkpoint(int fd, const CheckpointSpec& spec) override {
    specs.push_back(spec);
    std::string img = "image " + std::to_string(specs.size() - 1) + std::string(50000, 'x');
    size_t off = 0;
    while (off < img.size()) {  // fits the 1 MiB pipe
      ssize_t n = ::write(fd, img.data() + off, img.size() - off);
      if (n <= 0) break;
      off += size_t(n);
    }
    held = spec.hold;
    if (spec.hold) CHECK_FALSE(spec.leave_running);
    return ok();
  }
  Result<void> release_held(bool kill) override {
    REQUIRE(held);
    held = false;
    released.push_back(kill ? "kill" : "resume");
    running = !kill;
    return ok();
  }
  Result<CheckpointStats> finish_checkpoint() override {
    CHECK_FALSE(held);  // a held tree is released before the checkpoint is waited for
    CheckpointStats s;
    s.pages_written = pages[std::min(specs.size() - 1, pages.size() - 1)];
    s.frozen_us = frozen_us;
    return s;
  }
  bool container_running() override { return running; }
};

struct AgentLog {
  std::vector<std::string> kinds;
  std::vector<uint32_t> rounds;
};

// Follows the protocol; closes the connection after `stop_after` images (-1: never) or
// fails the restore.
void agent(int lfd, std::vector<uint8_t> key, std::string dir, int stop_after, bool fail_restore, AgentLog* log) {
  UniqueFd conn(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
  ChannelOptions o;
  o.peer = "client";
  auto ch = Channel::server(std::move(conn), key, o);
  if (!ch) return;
  ContentStore store(dir + "/store");
  (void)store.init();
  (void)ch->send_json(FrameType::Welcome, {{"limits", {{"max_frame", 65536}}}});
  if (!ch->recv_json(FrameType::Begin) || !ch->send_json(FrameType::Ok, nlohmann::json::object())) return;
  uint64_t received = 0;
  for (;;) {
    auto m = ch->recv_next();
    if (!m) return;
    if (m->type == FrameType::Manifest) {
      auto r = receive_bundle_round(*ch, *m->json(), store, Limits{}, dir, received);
      if (!r || !ch->send_json(FrameType::Synced, {{"stale", 0}})) return;
    } else if (m->type == FrameType::ImageBegin) {
      auto j = *m->json();
      if (int(log->kinds.size()) == stop_after) return;
      log->kinds.push_back(j.value("kind", ""));
      log->rounds.push_back(j.value("round", 99u));
      std::string path = dir + "/image";
      UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      auto n = receive_image(*ch, out.get(), path, 1 << 30);
      if (!n) return;
      (void)ch->send_json(FrameType::Ok, {{"bytes", *n}});
    } else if (m->type == FrameType::Restore) {
      if (fail_restore) return ch->send_error("restore: refused by the test");
      (void)ch->send_json(FrameType::Running, {{"pid", 77}});
      if (ch->recv_next()) (void)ch->send_json(FrameType::Committed, nlohmann::json::object());
      return;
    }
  }
}

struct Setup {
  std::string dir;
  UniqueFd listener;
  MigrateOptions opts;
  Setup() {
    char t[] = "/tmp/hamig-pre.XXXXXX";
    REQUIRE(::mkdtemp(t));
    dir = t;
    std::string b = dir + "/bundle";
    REQUIRE(::mkdir(b.c_str(), 0755) == 0);
    REQUIRE(::mkdir((b + "/rootfs").c_str(), 0755) == 0);
    std::ofstream(b + "/config.json")
        << R"({"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}})";
    listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener.get(), 1) == 0);
    REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    opts.id = "c1";
    opts.bundle_dir = b;
    opts.target = *parse_endpoint("127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
    opts.psk = std::vector<uint8_t>(32, 2);
    opts.work_dir = dir + "/work";
    opts.timeout_ms = 5000;
    opts.precopy.max_downtime_us = 0;  // never met: the other rules decide
    REQUIRE(::mkdir(opts.work_dir.c_str(), 0700) == 0);
  }
  ~Setup() { std::system(("rm -rf " + dir).c_str()); }
};

}  // namespace

TEST_CASE("precopy run: rounds until few pages, then the final round; the chain's parents named") {
  Setup s;
  RoundsHost host;
  host.pages = {262144, 5000, 1000, 10, 5};
  AgentLog log;
  std::thread a(agent, s.listener.get(), s.opts.psk, s.dir, -1, false, &log);
  auto r = migrate(s.opts, host);
  a.join();
  REQUIRE(r.ok());
  CHECK(r->stop == StopRule::FewPages);
  REQUIRE(r->rounds == 5);  // rounds 0..3 live, 4 final
  REQUIRE(host.specs.size() == 5);
  CHECK(log.kinds == std::vector<std::string>{"full", "pages", "pages", "pages", "pages"});
  CHECK(log.rounds == std::vector<uint32_t>{0, 1, 2, 3, 4});
  for (uint32_t k = 0; k < 5; ++k) {
    CHECK(host.specs[k].image_dir == s.opts.work_dir + "/r" + std::to_string(k));
    CHECK(host.specs[k].parent == (k ? "../r" + std::to_string(k - 1) : ""));
    CHECK(host.specs[k].leave_running == (k < 4));
    CHECK(r->round_log[k].live == (k < 4));
    CHECK(r->round_log[k].pause_us == 30000);
    CHECK(r->round_log[k].wire_bytes > r->round_log[k].image_bytes);
  }
  CHECK(r->round_log[1].pages == 5000);
  CHECK(r->image_bytes == 5 * r->round_log[0].image_bytes);
  CHECK_FALSE(r->budget_met);
  CHECK(host.released == std::vector<std::string>{"kill"});
  CHECK_FALSE(host.running);
  CHECK(::access(s.opts.work_dir.c_str(), F_OK) != 0);
}

TEST_CASE("precopy run: --max-rounds 1 is one live round, then the final one") {
  Setup s;
  RoundsHost host;
  host.pages = {262144, 200000};
  s.opts.precopy.max_rounds = 1;
  AgentLog log;
  std::thread a(agent, s.listener.get(), s.opts.psk, s.dir, -1, false, &log);
  auto r = migrate(s.opts, host);
  a.join();
  REQUIRE(r.ok());
  CHECK(r->stop == StopRule::MaxRounds);
  CHECK(r->rounds == 2);
  CHECK(log.kinds == std::vector<std::string>{"full", "pages"});
}

TEST_CASE("precopy run: no progress ends pre-copy") {
  Setup s;
  RoundsHost host;
  host.pages = {262144, 5000, 4800};
  AgentLog log;
  std::thread a(agent, s.listener.get(), s.opts.psk, s.dir, -1, false, &log);
  auto r = migrate(s.opts, host);
  a.join();
  REQUIRE(r.ok());
  CHECK(r->stop == StopRule::NoProgress);
  CHECK(r->rounds == 4);
}

TEST_CASE("precopy run: the agent lost in a pre-copy round: the app runs on, nothing restored") {
  Setup s;
  RoundsHost host;
  host.pages = {262144, 100000, 50000, 20000};
  AgentLog log;
  std::thread a(agent, s.listener.get(), s.opts.psk, s.dir, 2, false, &log);
  auto r = migrate(s.opts, host);
  a.join();
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::StartsWith("pre-copy round 2: "));
  CHECK_THAT(r.error().message, Catch::EndsWith("(c1 runs on)"));
  CHECK(host.running);
  CHECK(host.released.empty());
  CHECK(::access(s.opts.work_dir.c_str(), F_OK) != 0);
}

TEST_CASE("precopy run: the restore fails there: rolled back here, the held tree let go") {
  Setup s;
  RoundsHost host;
  host.pages = {262144, 1000, 10};
  AgentLog log;
  std::thread a(agent, s.listener.get(), s.opts.psk, s.dir, -1, true, &log);
  auto r = migrate(s.opts, host);
  a.join();
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::EndsWith("rolled back: c1 runs on this host again"));
  CHECK(host.released == std::vector<std::string>{"resume"});
  CHECK(host.running);
  CHECK(host.specs.back().hold);
  CHECK(::access(s.opts.work_dir.c_str(), F_OK) != 0);
}
