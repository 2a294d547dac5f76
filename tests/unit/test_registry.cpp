// Registry client units: image references, bearer challenges, platform selection,
// tar entry classification (whiteouts, escapes) and layer unpacking into a temp dir.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "bundle/registry_auth.hpp"
#include "bundle/registry_digest.hpp"
#include "bundle/registry_image_config.hpp"
#include "bundle/registry_manifest.hpp"
#include "bundle/registry_reference.hpp"
#include "bundle/registry_unpack.hpp"
#include "kernel/fs.hpp"

using namespace envrun;
using namespace envrun::registry;

TEST_CASE("references: registry, repository, tag, digest") {
  auto r = parse_reference("127.0.0.1:5000/team/app:v1.2");
  REQUIRE(r);
  CHECK(r->registry == "127.0.0.1:5000");
  CHECK(r->repository == "team/app");
  CHECK(r->tag == "v1.2");
  CHECK(r->digest.empty());
  CHECK(r->str() == "127.0.0.1:5000/team/app:v1.2");

  auto hub = parse_reference("busybox");
  REQUIRE(hub);
  CHECK(hub->registry == "registry-1.docker.io");
  CHECK(hub->repository == "library/busybox");
  CHECK(hub->tag == "latest");

  auto user = parse_reference("someone/tool:2");
  REQUIRE(user);
  CHECK(user->registry == kDockerHub);
  CHECK(user->repository == "someone/tool");

  auto local = parse_reference("localhost/app");
  REQUIRE(local);
  CHECK(local->registry == "localhost");
  CHECK(local->tag == "latest");

  std::string d = "sha256:" + std::string(64, 'a');
  auto dig = parse_reference("reg.example.com:443/x/y@" + d);
  REQUIRE(dig);
  CHECK(dig->digest == d);
  CHECK(dig->tag.empty());
  CHECK(dig->manifest_key() == d);
  auto both = parse_reference("reg.io/x:1@" + d);
  REQUIRE(both);
  CHECK(both->tag == "1");
  CHECK(both->manifest_key() == d);
}

TEST_CASE("references: invalid ones are usage errors naming the part") {
  for (const char* bad : {"", "Upper/case", "reg.io/a//b", "reg.io/app:", "reg.io/app:-x", "reg.io/-app",
                          "reg.io/app@sha256:12", "reg.io/app@md5:" "0123", "reg.io/a..b", "reg.io/"}) {
    INFO(bad);
    auto r = parse_reference(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::Usage);
  }
  CHECK(parse_reference("reg.io/a__b/c-d.e:T_1.x-2"));
  CHECK_FALSE(parse_reference("reg.io/a___b"));
  CHECK(parse_reference("reg.io/app:" + std::string(128, 't')));
  CHECK_FALSE(parse_reference("reg.io/app:" + std::string(129, 't')));
}

TEST_CASE("bearer challenges") {
  auto c = parse_challenge(R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull")");
  REQUIRE(c);
  CHECK(c->scheme == "bearer");
  CHECK(c->params["realm"] == "https://auth.example/token");
  CHECK(c->params["service"] == "registry.example");
  CHECK(c->params["scope"] == "repository:a/b:pull");
  auto b = parse_challenge(R"(Basic realm="x y, z")");
  REQUIRE(b);
  CHECK(b->scheme == "basic");
  CHECK(b->params["realm"] == "x y, z");
  CHECK_FALSE(parse_challenge(R"(Bearer realm="unterminated)"));
  CHECK_FALSE(parse_challenge(""));
}

TEST_CASE("platforms and index selection") {
  auto p = parse_platform("linux/arm/v7");
  REQUIRE(p);
  CHECK(p->architecture == "arm");
  CHECK(p->variant == "v7");
  CHECK_FALSE(parse_platform("linux"));
  CHECK_FALSE(parse_platform("linux/"));
  CHECK_FALSE(parse_platform("linux/arm/"));
  auto d = [](char c) { return "sha256:" + std::string(64, c); };
  nlohmann::json idx = {{"manifests",
                         {{{"digest", d('a')}, {"size", 1}, {"platform", {{"os", "linux"}, {"architecture", "arm"}, {"variant", "v6"}}}},
                          {{"digest", d('b')}, {"size", 2}, {"platform", {{"os", "linux"}, {"architecture", "arm"}, {"variant", "v7"}}}},
                          {{"digest", d('c')}, {"size", 3}, {"platform", {{"os", "unknown"}, {"architecture", "unknown"}}}},
                          {{"digest", d('e')}, {"size", 4}, {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}};
  auto v7 = select_platform(idx, *p, "idx");
  REQUIRE(v7);
  CHECK(v7->digest == d('b'));
  auto amd = select_platform(idx, *parse_platform("linux/amd64"), "idx");
  REQUIRE(amd);
  CHECK(amd->size == 4);
  auto none = select_platform(idx, *parse_platform("linux/s390x"), "idx");
  REQUIRE_FALSE(none);
  CHECK(none.error().kind == ErrorKind::NotFound);
  CHECK(none.error().message.find("linux/arm/v6, linux/arm/v7, linux/amd64") != std::string::npos);
  CHECK_FALSE(parse_descriptor({{"digest", "sha256:xyz"}, {"size", 1}}, "d"));
  CHECK_FALSE(parse_descriptor({{"digest", d('a')}, {"size", -1}}, "d"));
}

TEST_CASE("sha256 digests") {
  CHECK(sha256_digest("") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.update("ab", 2);
  h.update("c", 1);
  CHECK(h.finish() == sha256_digest("abc"));
}

TEST_CASE("tar entry names: whiteouts and escapes") {
  auto e = classify_entry("./usr/bin/tool");
  REQUIRE(e);
  CHECK(e->kind == EntryKind::Normal);
  CHECK(e->parent == "usr/bin");
  CHECK(e->name == "tool");
  auto w = classify_entry("etc/.wh.passwd");
  REQUIRE(w);
  CHECK(w->kind == EntryKind::Whiteout);
  CHECK(w->parent == "etc");
  CHECK(w->name == "passwd");
  auto o = classify_entry("var/lib/.wh..wh..opq");
  REQUIRE(o);
  CHECK(o->kind == EntryKind::Opaque);
  CHECK(o->parent == "var/lib");
  CHECK(classify_entry("./")->kind == EntryKind::Root);
  CHECK(classify_entry("a//./b/")->full() == "a/b");
  for (const char* bad : {"../x", "a/../../x", "a/..", "/etc/passwd", "", ".wh.", "a/.wh..", ".wh.dir/x"}) {
    INFO(bad);
    auto r = classify_entry(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::Config);
  }
}

namespace {

struct TarEntry {
  std::string name;
  char type = 'f';  // f file, d dir, l symlink, h hardlink
  std::string data;  // file content or link target
};

// A tar (gzip-compressed) with the given entries, written to `path`.
void write_tar(const std::string& path, const std::vector<TarEntry>& entries) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (const auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.name.c_str());
    archive_entry_set_perm(e, t.type == 'd' ? 0755 : 0644);
    if (t.type == 'd') archive_entry_set_filetype(e, AE_IFDIR);
    if (t.type == 'l') archive_entry_set_filetype(e, AE_IFLNK), archive_entry_set_symlink(e, t.data.c_str());
    if (t.type == 'h') archive_entry_set_filetype(e, AE_IFREG), archive_entry_set_hardlink(e, t.data.c_str());
    if (t.type == 'f') archive_entry_set_filetype(e, AE_IFREG), archive_entry_set_size(e, la_int64_t(t.data.size()));
    archive_write_header(a, e);
    if (t.type == 'f') archive_write_data(a, t.data.data(), t.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

struct Scratch {
  std::string dir;
  UniqueFd root;
  Scratch() {
    char t[] = "/tmp/envrun-unit-registry.XXXXXX";
    dir = ::mkdtemp(t);
    ::mkdir((dir + "/rootfs").c_str(), 0755);
    ::mkdir((dir + "/outside").c_str(), 0755);
    root = UniqueFd(::open((dir + "/rootfs").c_str(), O_PATH | O_DIRECTORY));
  }
  ~Scratch() { (void)fs::remove_tree(dir); }
  Result<UnpackStats> layer(const std::vector<TarEntry>& entries) {
    std::string p = dir + "/layer" + std::to_string(n++) + ".tar.gz";
    write_tar(p, entries);
    return unpack_layer(p, root.get(), "layer");
  }
  std::string rootfs(const std::string& rel) const { return dir + "/rootfs/" + rel; }
  int n = 0;
};

}  // namespace

TEST_CASE("unpack: layers, whiteouts and opaque directories") {
  Scratch s;
  REQUIRE(s.layer({{"etc", 'd'}, {"etc/passwd", 'f', "root:x:0:0::/root:/bin/sh\n"}, {"etc/group", 'f', "g"},
                   {"var/lib/old/a", 'f', "a"}, {"var/lib/b", 'f', "b"}, {"bin/sh", 'f', "sh"}, {"bin/ash", 'h', "bin/sh"},
                   {"lib", 'l', "usr/lib"}, {"usr/lib", 'd'}}));
  CHECK(fs::read_file(s.rootfs("etc/passwd")).value_or("") == "root:x:0:0::/root:/bin/sh\n");
  struct stat a {}, b {};
  REQUIRE(::stat(s.rootfs("bin/ash").c_str(), &a) == 0);
  REQUIRE(::stat(s.rootfs("bin/sh").c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);  // hard link inside the rootfs
  auto st = s.layer({{"etc/.wh.group", 'f'}, {"var/lib/.wh..wh..opq", 'f'}, {"var/lib/new", 'f', "n"},
                     {"lib/libx.so", 'f', "x"}, {"etc/passwd", 'f', "new"}});
  REQUIRE(st);
  CHECK_FALSE(fs::exists(s.rootfs("etc/group")));
  CHECK_FALSE(fs::exists(s.rootfs("var/lib/old")));
  CHECK_FALSE(fs::exists(s.rootfs("var/lib/b")));
  CHECK(fs::exists(s.rootfs("var/lib/new")));  // the opaque dir's own layer keeps its entries
  CHECK(fs::exists(s.rootfs("usr/lib/libx.so")));  // through a relative symlink inside the rootfs
  CHECK(fs::read_file(s.rootfs("etc/passwd")).value_or("") == "new");
  CHECK_FALSE(fs::exists(s.rootfs("etc/.wh.group")));
  // A file replaces a directory and a directory replaces a file.
  REQUIRE(s.layer({{"var/lib", 'f', "now a file"}, {"bin/sh", 'd'}}));
  CHECK(fs::read_file(s.rootfs("var/lib")).value_or("") == "now a file");
  CHECK(fs::is_dir(s.rootfs("bin/sh")));
  CHECK(fs::exists(s.rootfs("bin/ash")));  // the other link keeps the old content
  // A symlink replaces a file; a name twice in one layer: the last entry wins.
  REQUIRE(s.layer({{"etc/passwd", 'l', "/dev/null"}, {"x", 'f', "1"}, {"x", 'f', "2"}, {"bin/ash", 'l', "sh"}}));
  char buf[64] = {0};
  CHECK(::readlink(s.rootfs("etc/passwd").c_str(), buf, sizeof buf - 1) == 9);
  CHECK(std::string(buf) == "/dev/null");
  CHECK(fs::read_file(s.rootfs("x")).value_or("") == "2");
  struct stat l {};
  REQUIRE(::lstat(s.rootfs("bin/ash").c_str(), &l) == 0);
  CHECK(S_ISLNK(l.st_mode));
}

TEST_CASE("unpack: entries leaving the rootfs are refused") {
  Scratch s;
  std::string out = s.dir + "/outside";
  std::vector<std::vector<TarEntry>> hostile = {
      {{"../outside/pwned", 'f', "x"}},
      {{out + "/pwned", 'f', "x"}},
      {{"esc", 'l', out}, {"esc/pwned", 'f', "x"}},
      {{"d", 'd'}, {"d/up", 'l', "../../outside"}, {"d/up/pwned", 'f', "x"}},
      {{"h", 'h', "../outside/pwned"}},
      {{"h2", 'h', out + "/x"}},
      {{"esc2", 'l', out}, {"esc2/.wh.x", 'f'}},
  };
  for (size_t i = 0; i < hostile.size(); ++i) {
    INFO("hostile layer " << i);
    auto r = s.layer(hostile[i]);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::Config);
  }
  CHECK(fs::list_dir(out).empty());
}

TEST_CASE("image config -> spec: args, env, cwd, user") {
  Scratch s;
  ::mkdir(s.rootfs("etc").c_str(), 0755);
  REQUIRE(fs::atomic_write(s.rootfs("etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:100::/home/app:/bin/sh\n", 0644, false));
  REQUIRE(fs::atomic_write(s.rootfs("etc/group"), "root:x:0:\nstaff:x:50:\n", 0644, false));
  auto u = resolve_user("app", s.dir + "/rootfs");
  REQUIRE(u);
  CHECK(u->uid == 1000);
  CHECK(u->gid == 100);
  auto ug = resolve_user("app:staff", s.dir + "/rootfs");
  REQUIRE(ug);
  CHECK(ug->gid == 50);
  CHECK(resolve_user("1000", s.dir + "/rootfs")->gid == 100);
  CHECK(resolve_user("42:7", s.dir + "/rootfs")->uid == 42);
  CHECK_FALSE(resolve_user("nobody-here", s.dir + "/rootfs"));
  CHECK_FALSE(resolve_user("app:nogroup", s.dir + "/rootfs"));
  auto spec = spec_from_image_config(
      R"({"config":{"Entrypoint":["/e"],"Cmd":["a","b"],"Env":["PATH=/x","K=v"],"WorkingDir":"/w","User":"app","ExposedPorts":{"80/tcp":{},"53/udp":{}}}})",
      s.dir + "/rootfs", "reg/x:1");
  REQUIRE(spec);
  auto& j = *spec;
  CHECK(j["process"]["args"] == nlohmann::json({"/e", "a", "b"}));
  CHECK(j["process"]["cwd"] == "/w");
  CHECK(j["process"]["env"] == nlohmann::json({"TERM=xterm", "PATH=/x", "K=v"}));
  CHECK(j["process"]["terminal"] == false);
  CHECK(j["annotations"]["org.opencontainers.image.exposedPorts"] == "53/udp,80/tcp");
  if (::geteuid() == 0) CHECK(j["process"]["user"]["uid"] == 1000);
  CHECK_FALSE(spec_from_image_config(R"({"config":{"WorkingDir":"rel"}})", s.dir + "/rootfs", "x"));
  CHECK_FALSE(spec_from_image_config(R"({"config":{"Cmd":"not a list"}})", s.dir + "/rootfs", "x"));
  CHECK_FALSE(spec_from_image_config("[]", s.dir + "/rootfs", "x"));
}
