// intercept/path_util + DbView's fast first-component test: the lexical side of the
// resolver (the library itself is tested with real programs in t_intercept_files.sh).
#include <string>

#include <catch2/catch.hpp>

#include "bundle/intercept_db.hpp"
#include "intercept/db_view.hpp"
#include "intercept/path_util.cpp"  // the library is not a static library: compile the unit here

namespace envrun::icpt {
// The resolver's definition asks the DB; here "/r" and below count as ruled.
bool prefix_ruled(const char* s, size_t n) {
  return n >= 2 && s[0] == '/' && s[1] == 'r' && (n == 2 || s[2] == '/');
}
}  // namespace envrun::icpt

using envrun::icpt::InsidePath;

namespace {

std::string norm(const std::string& p, bool* trailing = nullptr, bool* climbed = nullptr) {
  InsidePath in;
  REQUIRE(envrun::icpt::normalize_abs(in, p.c_str(), p.size()) == 0);
  if (trailing) *trailing = in.trailing;
  if (climbed) *climbed = in.climbed_out;
  REQUIRE(in.s[in.n] == '\0');
  return std::string(in.s, in.n);
}

std::string join(const std::string& base, const std::string& rel) {
  InsidePath in;
  REQUIRE(envrun::icpt::join_normalized(in, base.c_str(), base.size(), rel.c_str(), rel.size()) == 0);
  return std::string(in.s, in.n);
}

}  // namespace

TEST_CASE("normalization removes //, . and .. lexically and stops at the root") {
  CHECK(norm("/") == "/");
  CHECK(norm("//a///b") == "/a/b");
  CHECK(norm("/a/./b/.") == "/a/b");
  CHECK(norm("/a/b/../c") == "/a/c");
  CHECK(norm("/../../a") == "/a");
  CHECK(norm("/a/..") == "/");
  CHECK(norm("/a/b/../../..") == "/");
  CHECK(norm("/.hidden/..x/...") == "/.hidden/..x/...");
}

TEST_CASE("a trailing slash (or /. or /..) is remembered") {
  bool t = false;
  norm("/a/b/", &t);
  CHECK(t);
  norm("/a/b/.", &t);
  CHECK(t);
  norm("/a/b", &t);
  CHECK_FALSE(t);
  norm("/", &t);
  CHECK_FALSE(t);
}

TEST_CASE("climbing out of a ruled directory with .. is noticed") {
  bool c = false;
  CHECK(norm("/r/x/../../etc", nullptr, &c) == "/etc");
  CHECK(c);
  CHECK(norm("/usr/../etc", nullptr, &c) == "/etc");
  CHECK_FALSE(c);
  CHECK(norm("/rx/../etc", nullptr, &c) == "/etc");
  CHECK_FALSE(c);
}

TEST_CASE("relative paths join the base directory") {
  CHECK(join("/a/b", "c") == "/a/b/c");
  CHECK(join("/a/b", "../c/./d") == "/a/c/d");
  CHECK(join("/", "x") == "/x");
  CHECK(join("/a", "../../..") == "/");
}

TEST_CASE("too long results are refused, not truncated") {
  std::string longp = "/" + std::string(PATH_MAX, 'x');
  InsidePath in;
  CHECK(envrun::icpt::normalize_abs(in, longp.c_str(), longp.size()) == -ENAMETOOLONG);
  std::string fits = "/" + std::string(PATH_MAX - 2, 'x');
  CHECK(envrun::icpt::normalize_abs(in, fits.c_str(), fits.size()) == 0);
}

TEST_CASE("has_dotdot finds .. components only") {
  CHECK(envrun::icpt::has_dotdot(".."));
  CHECK(envrun::icpt::has_dotdot("a/../b"));
  CHECK(envrun::icpt::has_dotdot("/a/.."));
  CHECK_FALSE(envrun::icpt::has_dotdot("/a/..b/c..d/x.y"));
  CHECK_FALSE(envrun::icpt::has_dotdot("/lib/libc.so.6"));
}

TEST_CASE("the first-component test never says no for a path a rule matches") {
  envrun::bundle::InterceptDb db = envrun::bundle::default_intercept_db();
  for (const char* p : {"/app", "/opt/tools", "/var/lib/x"}) {
    envrun::bundle::FileRuleSpec r;
    r.inside = p;
    r.outside = "/srv";
    db.files.push_back(r);
  }
  std::string bin = envrun::bundle::compile_intercept_db(db);
  envrun::idb::DbView v;
  REQUIRE(v.open(bin.data(), bin.size()) == nullptr);
  size_t n = 0;
  for (const char* p : {"/app/x", "/opt/tools", "/var/lib/x/y", "/app"}) {
    INFO(p);
    CHECK(v.first_component_may_match(p + 1, &n));
    CHECK(v.match(p, strlen(p)) != nullptr);
  }
  CHECK(v.first_component_may_match("opt/x", &n));
  CHECK(n == 3);
  // most unrelated first components are ruled out (the mask has 64 bits; 3 are set)
  int maybe = 0;
  for (const char* p : {"usr/lib", "etc/passwd", "home/u", "proc/self", "dev/null", "sys/fs", "tmp/x", "bin/sh"})
    maybe += v.first_component_may_match(p, &n);
  CHECK(maybe <= 2);
}
