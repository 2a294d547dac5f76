// The source side of a migration (ha/migrate_source.hpp) against a scripted agent on
// 127.0.0.1 and a fake source host: the good path reports the image it sent and keeps
// nothing; an agent that fails after the checkpoint gets the app restored from the
// local copy (which must hold the whole image); a checkpoint that fails while the app
// runs on is not rolled back; a commit without an answer keeps the local copy.
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

enum class FailAt { Nothing, Restore, Commit };

std::string read_all(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Checkpoints by writing `image` to the stream from a thread; `ok` decides its outcome.
struct FakeHost : SourceHost {
  std::string image;
  bool checkpoint_ok = true, running = true;
  std::vector<std::string> released;  // "kill" / "resume" of the held tree
  int rollback_hooks = 0;
  std::thread writer;
  Result<void> start_checkpoint(int fd, const CheckpointSpec& spec) override {
    CHECK(spec.hold);  // no pre-copy here: the one round is the final one
    int own = ::dup(fd);
    writer = std::thread([this, own] {
      size_t off = 0;
      while (off < image.size()) {
        ssize_t n = ::write(own, image.data() + off, std::min<size_t>(65536, image.size() - off));
        if (n <= 0) break;
        off += size_t(n);
      }
      ::close(own);
    });
    return ok();
  }
  Result<CheckpointStats> finish_checkpoint() override {
    writer.join();
    if (!checkpoint_ok) return Error::make(ErrorKind::Generic, "checkpoint: the tree could not be seized");
    return CheckpointStats{};
  }
  bool container_running() override { return running; }
  Result<void> release_held(bool kill) override {
    released.push_back(kill ? "kill" : "resume");
    running = !kill;
    return ok();
  }
  void rolled_back() override { ++rollback_hooks; }
  Result<void> image_whole() override {
    if (!checkpoint_ok) return Error::make(ErrorKind::Generic, "checkpoint: the tree could not be seized");
    return ok();
  }
};

// An agent that follows the protocol and fails where it is told to.
void agent(int lfd, std::vector<uint8_t> key, std::string store_dir, FailAt fail, std::string* got_image) {
  UniqueFd conn(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
  ChannelOptions o;
  o.peer = "client";
  auto ch = Channel::server(std::move(conn), key, o);
  if (!ch) return;
  ContentStore store(store_dir);
  (void)store.init();
  (void)ch->send_json(FrameType::Welcome, {{"limits", {{"max_frame", 65536}}}});
  if (!ch->recv_json(FrameType::Begin) || !ch->send_json(FrameType::Ok, nlohmann::json::object())) return;
  uint64_t received = 0;
  for (;;) {
    auto m = ch->recv_next();
    if (!m) return;
    if (m->type == FrameType::Manifest) {
      auto r = receive_bundle_round(*ch, *m->json(), store, Limits{}, store_dir, received);
      if (!r || !ch->send(FrameType::Busy, {}) || !ch->send_json(FrameType::Synced, {{"stale", 0}})) return;
    } else if (m->type == FrameType::ImageBegin) {
      std::string path = store_dir + "/image";
      UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      auto n = receive_image(*ch, out.get(), path, 1 << 30);
      if (!n) return;
      *got_image = read_all(path);
      (void)ch->send_json(FrameType::Ok, {{"bytes", *n}});
    } else if (m->type == FrameType::Restore) {
      if (fail == FailAt::Restore) return ch->send_error("restore: No space left on device");
      (void)ch->send(FrameType::Busy, {});
      (void)ch->send_json(FrameType::Running, {{"pid", 4242}});
      auto commit = ch->recv_next();
      if (!commit || fail == FailAt::Commit) return;  // no Committed answer
      (void)ch->send_json(FrameType::Committed, nlohmann::json::object());
      return;
    }
  }
}

struct Setup {
  std::string dir;
  UniqueFd listener;
  Endpoint target;
  MigrateOptions opts;
  Setup() {
    char t[] = "/tmp/hamig-mig.XXXXXX";
    REQUIRE(::mkdtemp(t));
    dir = t;
    std::string b = dir + "/bundle";
    REQUIRE(::mkdir(b.c_str(), 0755) == 0);
    REQUIRE(::mkdir((b + "/rootfs").c_str(), 0755) == 0);
    std::ofstream(b + "/config.json")
        << R"({"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}})";
    std::ofstream(b + "/rootfs/data") << "some data";
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
    opts.psk = std::vector<uint8_t>(32, 1);
    opts.work_dir = dir + "/work";
    opts.timeout_ms = 5000;
    opts.precopy.enabled = false;  // stop-and-copy here; pre-copy rounds: test_ha_precopy_run.cpp
    REQUIRE(::mkdir(opts.work_dir.c_str(), 0700) == 0);
  }
  ~Setup() { std::system(("rm -rf " + dir).c_str()); }
};

std::string image_of(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char(i * 31 + i / 977);
  return s;
}

}  // namespace

TEST_CASE("migrate: good path") {
  Setup s;
  FakeHost host;
  host.image = image_of(3 << 20);
  std::string got;
  std::thread a(agent, s.listener.get(), s.opts.psk, s.dir + "/store", FailAt::Nothing, &got);
  auto r = migrate(s.opts, host);
  a.join();
  REQUIRE(r.ok());
  CHECK(r->image_bytes == host.image.size());
  CHECK(got == host.image);
  CHECK(r->target_pid == 4242);
  CHECK(r->prefetch.blobs_sent == 2);  // config.json and rootfs/data
  CHECK(r->final_sync.blobs_sent == 0);
  CHECK(r->downtime_us <= r->total_us);
  CHECK(host.released == std::vector<std::string>{"kill"});  // after the commit
  CHECK(host.rollback_hooks == 0);
  CHECK(::access(s.opts.work_dir.c_str(), F_OK) != 0);  // the work directory is gone
}

TEST_CASE("migrate: the agent fails after the checkpoint: the held tree is let go") {
  Setup s;
  FakeHost host;
  host.image = image_of(2 << 20);
  std::string got;
  std::thread a(agent, s.listener.get(), s.opts.psk, s.dir + "/store", FailAt::Restore, &got);
  auto r = migrate(s.opts, host);
  a.join();
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("restore: No space left on device"));
  CHECK_THAT(r.error().message, Catch::EndsWith("rolled back: c1 runs on this host again"));
  CHECK(host.released == std::vector<std::string>{"resume"});
  CHECK(host.rollback_hooks == 1);
  CHECK(host.running);
  CHECK(::access(s.opts.work_dir.c_str(), F_OK) != 0);
}

TEST_CASE("migrate: a checkpoint that fails while the app runs on is not rolled back") {
  Setup s;
  FakeHost host;
  host.image = image_of(1000);
  host.checkpoint_ok = false;
  std::string got;
  std::thread a(agent, s.listener.get(), s.opts.psk, s.dir + "/store", FailAt::Nothing, &got);
  auto r = migrate(s.opts, host);
  a.join();
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("checkpoint: the tree could not be seized (c1 runs on)"));
  CHECK(host.released == std::vector<std::string>{"resume"});
  CHECK(host.rollback_hooks == 0);
}

TEST_CASE("migrate: a commit without an answer kills the held tree and says the outcome is open") {
  Setup s;
  FakeHost host;
  host.image = image_of(5000);
  std::string got;
  std::thread a(agent, s.listener.get(), s.opts.psk, s.dir + "/store", FailAt::Commit, &got);
  auto r = migrate(s.opts, host);
  a.join();
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("did not confirm the commit: it may run there"));
  CHECK_THAT(r.error().message, Catch::Contains("it was stopped here"));
  CHECK(host.released == std::vector<std::string>{"kill"});
  CHECK_FALSE(host.running);
}
