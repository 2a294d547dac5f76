// The bundle library (agent/library.hpp): versions, atomicity (a refused version leaves no
// directory behind), change_file, the current symlink, remove refused while in use.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "agent/library.hpp"
#include "bundle/spec_parser.hpp"
#include "kernel/fs.hpp"
#include "runtime/state.hpp"

using envrun::ErrorKind;
using envrun::agent::Library;
namespace fs = envrun::fs;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/unit_library.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { (void)fs::remove_tree(path); }
};

// A bundle in DIR: config.json (default spec, process.env += env), rootfs/ with a few files.
void make_bundle(const std::string& dir, const std::string& env = "A=1") {
  REQUIRE(fs::mkdir_p(dir + "/rootfs/bin"));
  auto spec = envrun::bundle::default_spec_json(false, 0, 0);
  spec["process"]["env"].push_back(env);
  REQUIRE(fs::write_file(dir + "/config.json", spec.dump(2), O_CREAT));
  REQUIRE(fs::write_file(dir + "/rootfs/bin/app", "v1 program", O_CREAT));
  ::symlink("app", (dir + "/rootfs/bin/app-link").c_str());
  ::link((dir + "/rootfs/bin/app").c_str(), (dir + "/rootfs/bin/app-hard").c_str());
}

std::string read(const std::string& p) { return fs::read_file(p).value_or(std::string("<unreadable>")); }

// Entries of the bundle's dir that are not versions/, current or a lock: leftovers.
int leftovers(const Library& lib, const std::string& name) {
  int n = 0;
  for (const auto& e : fs::list_dir(lib.bundle_dir(name)))
    if (e != "versions" && e != "current") ++n;
  return n;
}

}  // namespace

TEST_CASE("add makes version 1, publish the next ones; current follows", "[library]") {
  TempDir t;
  make_bundle(t.path + "/src");
  Library lib(t.path + "/agent");
  auto v1 = lib.add("web", t.path + "/src");
  REQUIRE(v1.ok());
  CHECK(v1->version == 1);
  CHECK(v1->source == "dir:" + t.path + "/src");
  CHECK(read(v1->dir + "/rootfs/bin/app") == "v1 program");
  CHECK(lib.current("web")->version == 1);

  SECTION("the copy shares nothing with its source") {
    struct stat a, b, h, l;
    REQUIRE(::stat((t.path + "/src/rootfs/bin/app").c_str(), &a) == 0);
    REQUIRE(::stat((v1->dir + "/rootfs/bin/app").c_str(), &b) == 0);
    CHECK(a.st_ino != b.st_ino);
    REQUIRE(::stat((v1->dir + "/rootfs/bin/app-hard").c_str(), &h) == 0);
    CHECK(h.st_ino == b.st_ino);  // a hard link inside the tree stays one
    REQUIRE(::lstat((v1->dir + "/rootfs/bin/app-link").c_str(), &l) == 0);
    CHECK(S_ISLNK(l.st_mode));
    REQUIRE(fs::write_file(t.path + "/src/rootfs/bin/app", "changed", O_TRUNC));
    CHECK(read(v1->dir + "/rootfs/bin/app") == "v1 program");
  }

  SECTION("publish: versions 2 and 3, listed in order, current is the last") {
    REQUIRE(fs::write_file(t.path + "/src/rootfs/bin/app", "v2 program", O_TRUNC));
    auto v2 = lib.publish("web", t.path + "/src");
    REQUIRE(v2.ok());
    CHECK(v2->version == 2);
    CHECK(lib.publish("web", t.path + "/src")->version == 3);
    auto all = lib.versions("web");
    REQUIRE(all.ok());
    REQUIRE(all->size() == 3);
    CHECK((*all)[0].version == 1);
    CHECK((*all)[2].version == 3);
    CHECK(!(*all)[1].created.empty());
    CHECK(lib.current("web")->version == 3);
    CHECK(read(lib.version("web", 1)->dir + "/rootfs/bin/app") == "v1 program");
    CHECK(read(lib.version("web", 2)->dir + "/rootfs/bin/app") == "v2 program");
    char target[64] = {};
    REQUIRE(::readlink((lib.bundle_dir("web") + "/current").c_str(), target, sizeof target - 1) > 0);
    CHECK(std::string(target) == "versions/3");
    CHECK(leftovers(lib, "web") == 0);
  }

  SECTION("add of a name already there is refused") {
    auto again = lib.add("web", t.path + "/src");
    REQUIRE(!again.ok());
    CHECK(again.error().kind == ErrorKind::State);
    CHECK(lib.versions("web")->size() == 1);
  }

  SECTION("publish to an unknown name is NotFound") {
    auto r = lib.publish("nothere", t.path + "/src");
    REQUIRE(!r.ok());
    CHECK(r.error().kind == ErrorKind::NotFound);
  }
}

TEST_CASE("a version that fails validation leaves no directory behind", "[library]") {
  TempDir t;
  make_bundle(t.path + "/good");
  make_bundle(t.path + "/bad");
  auto spec = envrun::bundle::default_spec_json(false, 0, 0);
  spec["process"]["args"] = nlohmann::json::array();
  REQUIRE(fs::write_file(t.path + "/bad/config.json", spec.dump(), O_TRUNC));
  Library lib(t.path + "/agent");

  SECTION("add: no name is left") {
    auto r = lib.add("web", t.path + "/bad");
    REQUIRE(!r.ok());
    CHECK(r.error().kind == ErrorKind::Config);
    CHECK_THAT(r.error().message, Catch::Contains("bundle web version 1") && Catch::Contains("config.json") &&
                                      Catch::Contains("process.args"));
    CHECK(!fs::exists(lib.bundle_dir("web")));
    CHECK(lib.names()->empty());
  }
  SECTION("publish: the versions and current stay as they were") {
    REQUIRE(lib.add("web", t.path + "/good").ok());
    auto r = lib.publish("web", t.path + "/bad");
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("version 2"));
    CHECK(!fs::exists(lib.version_dir("web", 2)));
    CHECK(!fs::exists(lib.version_dir("web", 2) + ".meta.json"));
    CHECK(leftovers(lib, "web") == 0);
    CHECK(lib.current("web")->version == 1);
    CHECK(lib.publish("web", t.path + "/good")->version == 2);  // the number was not used up
  }
  SECTION("no rootfs, an absolute root.path, a broken envrun.yaml") {
    REQUIRE(fs::remove_tree(t.path + "/bad/rootfs"));
    auto good = envrun::bundle::default_spec_json(false, 0, 0);
    REQUIRE(fs::write_file(t.path + "/bad/config.json", good.dump(), O_TRUNC));
    auto r = lib.add("web", t.path + "/bad");
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("root"));
    good["root"]["path"] = t.path + "/good/rootfs";
    REQUIRE(fs::write_file(t.path + "/bad/config.json", good.dump(), O_TRUNC));
    r = lib.add("web", t.path + "/bad");
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("root.path") && Catch::Contains("absolute"));
    REQUIRE(fs::write_file(t.path + "/good/envrun.yaml", "version: 1\nbogus: 2\n", O_CREAT));
    r = lib.add("web", t.path + "/good");
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("envrun.yaml") && Catch::Contains("bogus"));
    CHECK(!fs::exists(lib.bundle_dir("web")));
  }
  SECTION("a source that is not a directory") {
    auto r = lib.add("web", t.path + "/nothing");
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("not a directory"));
    CHECK(!fs::exists(lib.bundle_dir("web")));
  }
}

TEST_CASE("change_file: the next version is the current one with one file replaced", "[library]") {
  TempDir t;
  make_bundle(t.path + "/src");
  Library lib(t.path + "/agent");
  REQUIRE(lib.add("web", t.path + "/src").ok());
  auto spec = envrun::bundle::default_spec_json(false, 0, 0);
  spec["process"]["env"].push_back("NEW=2");
  auto v2 = lib.change_file("web", "config.json", spec.dump());
  REQUIRE(v2.ok());
  CHECK(v2->version == 2);
  CHECK_THAT(v2->source, Catch::Contains("config.json") && Catch::Contains("from 1"));
  CHECK_THAT(read(v2->dir + "/config.json"), Catch::Contains("NEW=2"));
  CHECK_THAT(read(lib.version("web", 1)->dir + "/config.json"), !Catch::Contains("NEW=2"));
  CHECK(read(v2->dir + "/rootfs/bin/app") == "v1 program");
  CHECK(lib.current("web")->version == 2);

  SECTION("config.yaml replaces config.json (one config per bundle)") {
    auto v3 = lib.change_file("web", "config.yaml", "ociVersion: 1.0.2\nprocess:\n  args: [/bin/app]\n  cwd: /\nroot:\n  path: rootfs\n");
    REQUIRE(v3.ok());
    CHECK(!fs::exists(v3->dir + "/config.json"));
    CHECK(fs::exists(v3->dir + "/config.yaml"));
  }
  SECTION("an invalid intercept.yaml is refused, naming the file") {
    auto r = lib.change_file("web", "intercept.yaml", "version: 7\n");
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("intercept.yaml") && Catch::Contains("version"));
    CHECK(!fs::exists(lib.version_dir("web", 3)));
    CHECK(lib.current("web")->version == 2);
    auto ok = lib.change_file("web", "intercept.yaml", "version: 1\n");
    REQUIRE(ok.ok());
    CHECK(ok->version == 3);
  }
  SECTION("only the four bundle files can be changed") {
    for (const char* f : {"rootfs/bin/app", "../x", "config.txt"}) {
      auto r = lib.change_file("web", f, "x");
      REQUIRE(!r.ok());
      CHECK(r.error().kind == ErrorKind::Usage);
    }
  }
}

TEST_CASE("names: validated, no path escapes", "[library]") {
  for (const char* bad : {"", "..", ".hidden", "a/b", "../etc", "x y"}) {
    INFO(bad);
    CHECK(!Library::validate_name(bad).ok());
  }
  for (const char* good : {"web", "web-1.2_x", "A"}) CHECK(Library::validate_name(good).ok());
  TempDir t;
  Library lib(t.path);
  CHECK(!lib.add("../../etc", "/").ok());
  CHECK(!lib.versions("../state").ok());
}

TEST_CASE("remove refuses while an instance runs from the bundle; owner_of", "[library]") {
  TempDir t;
  make_bundle(t.path + "/src");
  Library lib(t.path + "/agent");
  auto v1 = lib.add("web", t.path + "/src");
  REQUIRE(v1.ok());
  auto owner = lib.owner_of(v1->dir);
  REQUIRE(owner.ok());
  CHECK(owner->name == "web");
  CHECK(owner->version == 1);
  CHECK(!lib.owner_of(t.path + "/src").ok());

  envrun::runtime::StateStore store(t.path + "/agent/state");
  REQUIRE(fs::mkdir_p(store.dir("inst1")));
  envrun::runtime::ContainerState st;
  st.id = "inst1";
  st.bundle = v1->dir;
  st.rootfs = v1->dir + "/rootfs";
  REQUIRE(store.save(st, false).ok());
  auto r = lib.remove("web");
  REQUIRE(!r.ok());
  CHECK(r.error().kind == ErrorKind::State);
  CHECK_THAT(r.error().message, Catch::Contains("inst1"));
  CHECK(fs::exists(v1->dir));
  REQUIRE(fs::remove_tree(store.dir("inst1")));
  REQUIRE(lib.remove("web").ok());
  CHECK(!fs::exists(lib.bundle_dir("web")));
  CHECK(lib.names()->empty());
  CHECK(lib.remove("web").error().kind == ErrorKind::NotFound);
}
