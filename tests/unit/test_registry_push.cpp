// Push-side units: base64 and auth.json (docker's format, 0600, malformed entries named),
// the deterministic rootfs layer (same tree -> same digest, a changed mtime -> another,
// unpacks back to the same tree), and the split of envrun bundle-file blobs on pull.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "bundle/registry_credentials.hpp"
#include "bundle/registry_push.hpp"
#include "bundle/registry_push_layer.hpp"
#include "bundle/registry_unpack.hpp"
#include "kernel/fs.hpp"

using namespace envrun;
using namespace envrun::registry;

namespace {
std::string temp_dir() {
  char t[] = "/tmp/envrun-unit-push.XXXXXX";
  REQUIRE(::mkdtemp(t) != nullptr);
  return t;
}

PackedLayer pack(const std::string& rootfs, const std::string& out) {
  UniqueFd fd(::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  REQUIRE(fd);
  auto r = pack_rootfs(rootfs, fd.get());
  REQUIRE(r);
  return *r;
}
}  // namespace

TEST_CASE("base64 round trip, padding, bad input") {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "alice:s3cret", std::string("\0\xff:", 3)}) {
    auto d = base64_decode(base64_encode(s));
    REQUIRE(d);
    CHECK(*d == s);
  }
  CHECK(base64_encode("alice:s3cret") == "YWxpY2U6czNjcmV0");
  CHECK_FALSE(base64_decode("abc"));
}

TEST_CASE("auth.json: store 0600, find (docker-style keys too), remove, malformed entries") {
  std::string d = temp_dir();
  std::string f = d + "/sub/auth.json";
  REQUIRE(store_credentials(f, "127.0.0.1:5000", {"alice", "pw:with:colons"}));
  REQUIRE(store_credentials(f, "other:1", {"bob", "x"}));
  struct stat st {};
  REQUIRE(::stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto c = find_credentials(f, "127.0.0.1:5000");
  REQUIRE(c);
  REQUIRE(c->has_value());
  CHECK((*c)->username == "alice");
  CHECK((*c)->password == "pw:with:colons");
  CHECK((*c)->basic_header() == "Authorization: Basic " + base64_encode("alice:pw:with:colons"));
  auto none = find_credentials(f, "nowhere:1");
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  auto removed = remove_credentials(f, "127.0.0.1:5000");
  REQUIRE(removed);
  CHECK(*removed);
  CHECK_FALSE(find_credentials(f, "127.0.0.1:5000")->has_value());
  CHECK(find_credentials(f, "other:1")->has_value());
  CHECK_FALSE(*remove_credentials(f, "127.0.0.1:5000"));

  REQUIRE(fs::atomic_write(f, R"({"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}})", 0600));
  auto hub = find_credentials(f, "registry-1.docker.io");
  REQUIRE(hub);
  REQUIRE(hub->has_value());
  CHECK((*hub)->username == "u");
  REQUIRE(fs::atomic_write(f, R"({"auths":{"h:1":{"auth":"bm9jb2xvbg=="}}})", 0600));  // "nocolon"
  auto bad = find_credentials(f, "h:1");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("auths[\"h:1\"].auth") != std::string::npos);
  CHECK(bad.error().message.find(f) == 0);
  CHECK_FALSE(find_credentials(d + "/absent.json", "h:1")->has_value());
  (void)fs::remove_tree(d);
}

TEST_CASE("rootfs layer: deterministic, sensitive to mtimes, unpacks to the same tree") {
  std::string d = temp_dir();
  std::string root = d + "/rootfs";
  REQUIRE(fs::mkdir_p(root + "/etc/sub"));
  REQUIRE(fs::atomic_write(root + "/etc/a", "alpha", 0644, false));
  REQUIRE(fs::atomic_write(root + "/etc/sub/b", "beta", 0644, false));
  REQUIRE(::symlink("a", (root + "/etc/link").c_str()) == 0);
  REQUIRE(::link((root + "/etc/a").c_str(), (root + "/hard").c_str()) == 0);
  REQUIRE(::chown((root + "/etc/sub/b").c_str(), 1234, 567) == 0);
  struct timespec ts[2] = {{1000000000, 123456789}, {1000000000, 123456789}};
  REQUIRE(::utimensat(AT_FDCWD, (root + "/etc/sub/b").c_str(), ts, 0) == 0);

  auto one = pack(root, d + "/l1");
  auto two = pack(root, d + "/l2");
  CHECK(one.digest == two.digest);
  CHECK(one.diff_id == two.diff_id);
  CHECK(one.entries == 6);  // etc, etc/a, etc/link, etc/sub, etc/sub/b, hard
  ts[0].tv_nsec = ts[1].tv_nsec = 5;
  REQUIRE(::utimensat(AT_FDCWD, (root + "/etc/sub/b").c_str(), ts, 0) == 0);
  CHECK(pack(root, d + "/l3").diff_id != one.diff_id);

  REQUIRE(fs::mkdir_p(d + "/back"));
  UniqueFd back(::open((d + "/back").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(unpack_layer(d + "/l3", back.get(), "layer"));
  CHECK(*fs::read_file(d + "/back/etc/sub/b") == "beta");
  struct stat a {}, h {}, b {};
  REQUIRE(::stat((d + "/back/etc/a").c_str(), &a) == 0);
  REQUIRE(::stat((d + "/back/hard").c_str(), &h) == 0);
  CHECK(a.st_ino == h.st_ino);
  REQUIRE(::stat((d + "/back/etc/sub/b").c_str(), &b) == 0);
  CHECK(b.st_uid == 1234);
  CHECK(b.st_gid == 567);
  CHECK(b.st_mtim.tv_sec == 1000000000);
  CHECK(b.st_mtim.tv_nsec == 5);
  char target[16] = {0};
  CHECK(::readlink((d + "/back/etc/link").c_str(), target, sizeof target - 1) == 1);
  (void)fs::remove_tree(d);
}

TEST_CASE("push/pull: the bundle files travel as manifest annotations") {
  std::string d = temp_dir();
  REQUIRE(fs::atomic_write(d + "/intercept.yaml", "version: 1\n", 0644, false));
  auto a = bundle_file_annotations(d, "{\"ociVersion\": \"1.0.2\"}");
  REQUIRE(a);
  CHECK(a->size() == 2);
  CHECK(a->at(kConfigAnnotation) == "{\"ociVersion\": \"1.0.2\"}");
  CHECK(a->at(kInterceptAnnotation) == "version: 1\n");
  ImageManifest m;
  m.digest = "sha256:1";
  m.annotations = *a;
  m.annotations["org.opencontainers.image.created"] = "2026-01-01T00:00:00Z";  // others are ignored
  std::string back = d + "/back";
  REQUIRE(fs::mkdir_p(back));
  auto n = restore_bundle_files(m, back);
  REQUIRE(n);
  CHECK(*n == 2);
  CHECK(*fs::read_file(back + "/config.json") == "{\"ociVersion\": \"1.0.2\"}");
  CHECK(*fs::read_file(back + "/intercept.yaml") == "version: 1\n");
  CHECK(fs::list_dir(back).size() == 2);

  ImageManifest plain;  // an image not pushed by envrun: nothing written
  auto none = restore_bundle_files(plain, back + "/none");
  REQUIRE(none);
  CHECK(*none == 0);

  ImageManifest bad;
  bad.digest = "sha256:2";
  bad.annotations[kConfigAnnotation] = "[1, 2]";
  auto refused = restore_bundle_files(bad, back);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("io.envrun.bundle.config.json: not a JSON object") != std::string::npos);

  REQUIRE(fs::atomic_write(d + "/intercept.yaml", std::string(kMaxBundleFiles, '#'), 0644, false));
  auto big = bundle_file_annotations(d, "{}");
  REQUIRE_FALSE(big);
  CHECK(big.error().message.find("an image carries at most 1048576 bytes") != std::string::npos);
  (void)fs::remove_tree(d);
}
