// Bundle sync (ha/manifest.hpp, ha/bundle_sync.hpp, ha/materialize.hpp): a real bundle
// directory walked, sent over a socket pair into an agent's content store and rebuilt;
// the rebuilt tree's manifest must equal the original's (kinds, modes, owners, times,
// contents, hard links); a second sync sends only what changed; manifests that try to
// leave the bundle are refused, and so are device nodes.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "ha/bundle_sync.hpp"
#include "ha/materialize.hpp"

using namespace envrun;
using namespace envrun::ha;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/hamig-sync.XXXXXX";
    REQUIRE(::mkdtemp(t));
    path = t;
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

void write_file(const std::string& p, const std::string& content, mode_t mode = 0644) {
  std::ofstream(p) << content;
  REQUIRE(::chmod(p.c_str(), mode) == 0);
}

// A bundle with every kind of entry the manifest knows, odd modes and owners.
std::string make_bundle(const std::string& top) {
  std::string b = top + "/bundle", r = b + "/rootfs";
  REQUIRE(::mkdir(b.c_str(), 0755) == 0);
  write_file(b + "/config.json",
             R"({"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}})");
  write_file(b + "/notes.txt", "not part of the bundle's content");
  for (const char* d : {"", "/bin", "/etc", "/tmp", "/srv", "/srv/empty"}) REQUIRE(::mkdir((r + d).c_str(), 0755) == 0);
  REQUIRE(::chmod((r + "/tmp").c_str(), 01777) == 0);
  REQUIRE(::chmod((r + "/srv/empty").c_str(), 0500) == 0);
  write_file(r + "/bin/tool", std::string(300000, 'x') + "tool", 04755);
  write_file(r + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  write_file(r + "/etc/secret", "s3cret", 0600);
  REQUIRE(::chown((r + "/etc/secret").c_str(), 1000, 1001) == 0);
  write_file(r + "/etc/copy-of-passwd", "root:x:0:0::/root:/bin/sh\n");  // same content: one blob
  REQUIRE(::link((r + "/bin/tool").c_str(), (r + "/bin/tool-link").c_str()) == 0);
  REQUIRE(::symlink("tool", (r + "/bin/sh").c_str()) == 0);
  REQUIRE(::symlink("/etc/passwd", (r + "/etc/abs-link").c_str()) == 0);
  REQUIRE(::mkfifo((r + "/tmp/fifo").c_str(), 0620) == 0);
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", (r + "/tmp/sock").c_str());
  REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  ::close(s);
  struct timespec old[2] = {{1000000000, 123456789}, {1000000000, 123456789}};
  REQUIRE(::utimensat(AT_FDCWD, (r + "/etc").c_str(), old, 0) == 0);
  return b;
}

const ManifestEntry* find(const Manifest& m, const std::string& path) {
  for (const auto& e : m.entries)
    if (e.path == path) return &e;
  return nullptr;
}

// One sync round over a socket pair: the agent side on a thread, materializing when final.
struct RoundResult {
  Result<SyncStats> sent = Error::make(ErrorKind::Generic, "not run");
  Result<ReceivedRound> received = Error::make(ErrorKind::Generic, "not run");
  Result<void> built = ok();
};

RoundResult sync_round(const std::string& bundle, const Manifest& m, bool final, const ContentStore& store,
                       const std::string& tmp, const std::string& dest, Limits limits = {}) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  UniqueFd a(sv[0]), b(sv[1]);
  std::vector<uint8_t> key(32, 9);
  RoundResult out;
  uint64_t received = 0;
  std::thread agent([&] {
    ChannelOptions o;
    o.peer = "client";
    auto ch = Channel::server(std::move(b), key, o);
    if (!ch) return;
    auto msg = ch->recv_json(FrameType::Manifest);
    if (!msg) return;
    out.received = receive_bundle_round(*ch, *msg, store, limits, tmp, received);
    if (!out.received) return ch->send_error(out.received.error().message);
    if (final) out.built = materialize(out.received->manifest, store, dest);
    (void)ch->send_json(FrameType::Synced, {{"stale", out.received->stale}});
  });
  {
    ChannelOptions o;
    o.peer = "agent";
    auto ch = Channel::client(std::move(a), key, o);
    REQUIRE(ch.ok());
    out.sent = send_bundle_round(*ch, bundle, m, final);
  }
  agent.join();
  return out;
}

}  // namespace

TEST_CASE("manifest: every kind, the bundle's own files only, hard links, no sockets") {
  TempDir t;
  std::string b = make_bundle(t.path);
  HashCache cache;
  auto m = build_manifest(b, cache);
  REQUIRE(m.ok());
  CHECK(find(*m, "config.json"));
  CHECK_FALSE(find(*m, "notes.txt"));
  CHECK_FALSE(find(*m, "rootfs/tmp/sock"));
  REQUIRE(find(*m, "rootfs/bin/tool-link"));
  CHECK(find(*m, "rootfs/bin/tool-link")->kind == EntryKind::Hardlink);
  CHECK(find(*m, "rootfs/bin/tool-link")->target == "rootfs/bin/tool");
  CHECK(find(*m, "rootfs/bin/tool")->mode == 04755);
  CHECK(find(*m, "rootfs/bin/sh")->kind == EntryKind::Symlink);
  CHECK(find(*m, "rootfs/tmp/fifo")->kind == EntryKind::Fifo);
  CHECK(find(*m, "rootfs/tmp")->mode == 01777);
  CHECK(find(*m, "rootfs/etc/secret")->uid == 1000);
  CHECK(find(*m, "rootfs/etc/passwd")->sha256 == find(*m, "rootfs/etc/copy-of-passwd")->sha256);
  CHECK(m->file_count() == 5);
  uint64_t first_hash = cache.hashed_bytes;
  CHECK(first_hash > 300000);
  auto again = build_manifest(b, cache);
  REQUIRE(again.ok());
  CHECK(cache.hashed_bytes == first_hash);  // nothing changed: no file read again
}

TEST_CASE("sync: the rebuilt bundle equals the original; a second sync sends only the changed file") {
  TempDir t;
  std::string b = make_bundle(t.path);
  ContentStore store(t.path + "/agent/blobs/sha256");
  REQUIRE(store.init().ok());
  REQUIRE(::mkdir((t.path + "/agent/tmp").c_str(), 0700) == 0);
  HashCache cache;
  auto m = build_manifest(b, cache);
  REQUIRE(m.ok());
  auto r1 = sync_round(b, *m, true, store, t.path + "/agent/tmp", t.path + "/copy1");
  REQUIRE(r1.sent.ok());
  REQUIRE(r1.received.ok());
  REQUIRE(r1.built.ok());
  CHECK(r1.sent->blobs_sent == 4);  // 5 files, two with the same content
  HashCache other;
  auto copy = build_manifest(t.path + "/copy1", other);
  REQUIRE(copy.ok());
  REQUIRE(copy->entries.size() == m->entries.size());
  for (size_t i = 0; i < m->entries.size(); ++i) {
    const auto &x = m->entries[i], &y = copy->entries[i];
    INFO(x.path);
    CHECK(y.path == x.path);
    CHECK(char(y.kind) == char(x.kind));
    CHECK(y.mode == x.mode);
    CHECK(y.uid == x.uid);
    CHECK(y.gid == x.gid);
    CHECK(y.sha256 == x.sha256);
    CHECK(y.target == x.target);
    if (x.kind != EntryKind::Symlink) CHECK(y.mtime_ns == x.mtime_ns);
  }
  write_file(b + "/rootfs/etc/passwd", "root:x:0:0::/root:/bin/ash\n");
  auto m2 = build_manifest(b, cache);
  REQUIRE(m2.ok());
  auto r2 = sync_round(b, *m2, true, store, t.path + "/agent/tmp", t.path + "/copy2");
  REQUIRE(r2.sent.ok());
  REQUIRE(r2.built.ok());
  CHECK(r2.sent->blobs_sent == 1);
  CHECK(r2.sent->bytes_sent == 27);
  std::ifstream f(t.path + "/copy2/rootfs/etc/passwd");
  std::string line;
  std::getline(f, line);
  CHECK(line == "root:x:0:0::/root:/bin/ash");
}

TEST_CASE("sync: the agent's bundle size limit is enforced before anything is stored") {
  TempDir t;
  std::string b = make_bundle(t.path);
  ContentStore store(t.path + "/agent/blobs/sha256");
  REQUIRE(store.init().ok());
  HashCache cache;
  auto m = build_manifest(b, cache);
  REQUIRE(m.ok());
  Limits small;
  small.max_bundle_bytes = 1000;
  auto r = sync_round(b, *m, true, store, t.path, t.path + "/copy", small);
  REQUIRE_FALSE(r.received.ok());
  CHECK_THAT(r.received.error().message, Catch::Contains("exceeds the agent's limit of 1000 bytes (--max-bundle-bytes)"));
  REQUIRE_FALSE(r.sent.ok());
  CHECK_THAT(r.sent.error().message, Catch::Contains("--max-bundle-bytes"));
  CHECK_FALSE(store.has(find(*m, "rootfs/etc/passwd")->sha256));
}

TEST_CASE("device nodes are refused with the node's path") {
  TempDir t;
  std::string b = make_bundle(t.path);
  REQUIRE(::mknod((b + "/rootfs/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  HashCache cache;
  auto m = build_manifest(b, cache);
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.error().message, Catch::Contains("rootfs/null: a character device node"));
}

TEST_CASE("manifests that would write outside the bundle are refused") {
  auto entry = [](std::string path, std::string kind, std::string extra = "") {
    return nlohmann::json::array({path, kind, 0755, 0, 0, 0, 0, extra});
  };
  std::string h(64, 'a');
  auto check = [&](nlohmann::json entries, const std::string& why) {
    auto m = manifest_from_json({{"version", 1}, {"entries", entries}}, Limits{});
    REQUIRE_FALSE(m.ok());
    CHECK_THAT(m.error().message, Catch::Contains(why));
  };
  check({entry("../etc", "d")}, "not a clean relative path");
  check({entry("/etc", "d")}, "not a clean relative path");
  check({entry("rootfs", "d"), entry("rootfs/./x", "f", h)}, "not a clean relative path");
  check({entry("rootfs", "d"), entry("rootfs/link", "l", "/etc"), entry("rootfs/link/passwd", "f", h)},
        "its parent is not an earlier directory entry");
  check({entry("rootfs", "d"), entry("rootfs/a", "h", "rootfs/b"), entry("rootfs/b", "f", h)}, "not an earlier file");
  check({entry("rootfs", "d"), entry("rootfs", "d")}, "listed twice");
  check({entry("rootfs", "d"), entry("rootfs/x", "f", "ABC")}, "sha256 must be 64 lower-case hex digits");

  // And materialize itself never follows a symlink, even for a manifest nobody validated.
  TempDir t;
  ContentStore store(t.path + "/blobs");
  REQUIRE(store.init().ok());
  Manifest evil;
  evil.entries.push_back({"rootfs", EntryKind::Dir, 0755, 0, 0, 0, 0, {}, {}});
  evil.entries.push_back({"rootfs/out", EntryKind::Symlink, 0777, 0, 0, 0, 0, {}, t.path});
  evil.entries.push_back({"rootfs/out/escaped", EntryKind::Dir, 0755, 0, 0, 0, 0, {}, {}});
  auto r = materialize(evil, store, t.path + "/dest");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("rootfs/out"));
  CHECK(::access((t.path + "/escaped").c_str(), F_OK) != 0);
}
