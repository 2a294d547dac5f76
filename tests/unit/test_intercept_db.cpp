// bundle/intercept_db: intercept.yaml -> model (errors with file:line:col and the field),
// variables, compile -> intercept/db_view.hpp (open, longest-prefix match, corruption).
#include <cstring>
#include <string>

#include <catch2/catch.hpp>

#include "bundle/intercept_db.hpp"
#include "bundle/intercept_db_reader.hpp"
#include "intercept/db_view.hpp"

using namespace envrun;
using namespace envrun::bundle;

namespace {

InterceptVars vars() {
  return {"/b", "/b/rootfs", "/home/u", "web1", "/run/envrun/web1"};
}

InterceptDb parse_ok(const std::string& yaml, const InterceptVars& v = vars()) {
  auto r = parse_intercept_yaml(yaml, "intercept.yaml", v);
  INFO(yaml);
  if (!r) FAIL("unexpected error: " << r.error().message);
  return std::move(*r);
}

std::string parse_err(const std::string& yaml, const InterceptVars& v = vars()) {
  auto r = parse_intercept_yaml(yaml, "intercept.yaml", v);
  INFO(yaml);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::Config);
  return r.error().message;
}

const char* kFull = R"(version: 1
files:
  - inside: /opt/app/
    outside: ${ROOTFS}/opt/app
  - inside: /etc/app.conf
    outside: ${BUNDLE}/conf/app.conf
    mode: readonly
  - inside: /var/lib/app
    mode: writecopy
  - inside: /home/x/../secret
    mode: hide
  - inside: /data
    outside: /srv/data
    mode: writecopy
    upper: ${STATE}/up
  - inside: /usr/share
    outside: ${ROOTFS}/usr/share
    mode: merge
env:
  - set: APP_HOME
    value: "${BUNDLE} costs $$5"
  - unset: LD_LIBRARY_PATH
  - prepend: PATH
    value: ${ROOTFS}/usr/bin
  - append: MANPATH
    value: /x
    separator: ";"
network:
  - inside: 8080
    outside: 18080
    protocol: tcp
  - inside: "127.0.0.1:53"
    outside: "10.0.0.2:5353"
    protocol: udp
  - inside: "[::1]:9000"
    outside: 9001
interceptors:
  - name: redirect
    options: {exec_static: deny}
  - name: meter
    enabled: false
)";

}  // namespace

TEST_CASE("a full intercept.yaml parses into the model", "[intercept_db]") {
  InterceptDb db = parse_ok(kFull);
  CHECK(db.version == 1);
  CHECK(db.source == "intercept.yaml");
  REQUIRE(db.files.size() == 6);
  CHECK(db.files[0].inside == "/opt/app");  // trailing '/' normalized away
  CHECK(db.files[0].outside == "/b/rootfs/opt/app");
  CHECK(db.files[0].mode == idb::FileMode::Override);  // the default
  CHECK(db.files[0].line == 3);
  CHECK(db.files[1].mode == idb::FileMode::ReadOnly);
  CHECK(db.files[1].outside == "/b/conf/app.conf");
  CHECK(db.files[2].mode == idb::FileMode::WriteCopy);
  CHECK(db.files[2].outside.empty());  // lower = the host path
  CHECK(db.files[2].upper == "/run/envrun/web1/upper/2");
  CHECK(db.files[2].index == 2);
  CHECK(db.files[3].inside == "/home/secret");
  CHECK(db.files[3].mode == idb::FileMode::Hide);
  CHECK(db.files[4].upper == "/run/envrun/web1/up");
  CHECK(db.files[5].mode == idb::FileMode::Merge);

  REQUIRE(db.env.size() == 4);
  CHECK(db.env[0].op == idb::EnvOp::Set);
  CHECK(db.env[0].value == "/b costs $5");
  CHECK(db.env[1].op == idb::EnvOp::Unset);
  CHECK(db.env[1].name == "LD_LIBRARY_PATH");
  CHECK(db.env[2].op == idb::EnvOp::Prepend);
  CHECK(db.env[2].separator == ':');
  CHECK(db.env[3].separator == ';');

  REQUIRE(db.net.size() == 3);
  CHECK(db.net[0].proto == idb::NetProto::Tcp);
  CHECK(db.net[0].family == 0);
  CHECK(db.net[0].inside_port == 8080);
  CHECK(db.net[0].outside_port == 18080);
  CHECK(db.net[1].family == 4);
  CHECK(db.net[1].inside_addr[0] == 127);
  CHECK(db.net[1].outside_addr[3] == 2);
  CHECK(db.net[1].outside_port == 5353);
  CHECK(db.net[2].family == 6);
  CHECK(db.net[2].has_inside_addr);
  CHECK_FALSE(db.net[2].has_outside_addr);
  CHECK(db.net[2].inside_addr[15] == 1);
  CHECK(db.net[2].proto == idb::NetProto::Any);

  REQUIRE(db.interceptors.size() == 2);
  CHECK(db.interceptors[0].name == "redirect");
  CHECK(db.interceptors[0].enabled);
  REQUIRE(db.interceptors[0].options.size() == 1);
  CHECK(db.interceptors[0].options[0] == std::pair<std::string, std::string>{"exec_static", "deny"});
  CHECK_FALSE(db.interceptors[1].enabled);
}

TEST_CASE("without interceptors the default chain is used", "[intercept_db]") {
  InterceptDb db = parse_ok("version: 1\n");
  REQUIRE(db.interceptors.size() == known_interceptors().size());
  for (size_t i = 0; i < db.interceptors.size(); ++i) {
    CHECK(db.interceptors[i].name == known_interceptors()[i]);
    CHECK(db.interceptors[i].enabled);
  }
  CHECK(parse_ok("version: 1\ninterceptors: []\n").interceptors.empty());
}

TEST_CASE("bad intercept.yaml: each error names file:line:col, the field and the reason", "[intercept_db]") {
  struct Case {
    const char* yaml;
    const char* want;
  };
  const Case cases[] = {
      {"files: []\n", "intercept.yaml:1:1: version: required"},
      {"", "intercept.yaml:1:1: version: required"},
      {"version: 2\n", "intercept.yaml:1:10: version: unsupported version 2 (this envrun reads 1)"},
      {"version: one\n", "intercept.yaml:1:10: version: expected an integer"},
      {"version: 1\nfile: []\n", "intercept.yaml:2:1: file: unknown key"},
      {"version: 1\nfiles: []\nfiles: []\n", "intercept.yaml:3:1: files: duplicate key"},
      {"version: 1\nfiles: {}\n", "intercept.yaml:2:8: files: expected a list, got a mapping"},
      {"version: 1\nfiles:\n  - inside: /a\n    outside: /b\n  - inside: /c\n    outside: /d\n  - inside: /opt/app\n"
       "    outside: /x\n    mode: copy\n",
       "intercept.yaml:9:11: files[2].mode: unknown mode \"copy\" (merge, override, writecopy, readonly, hide)"},
      {"version: 1\nfiles:\n  - outside: /x\n", "intercept.yaml:3:5: files[0].inside: required"},
      {"version: 1\nfiles:\n  - inside: opt/app\n    outside: /x\n",
       "intercept.yaml:3:13: files[0].inside: \"opt/app\" is not an absolute path"},
      {"version: 1\nfiles:\n  - inside: /a\n", "intercept.yaml:3:5: files[0].outside: required for mode override"},
      {"version: 1\nfiles:\n  - inside: /a\n    outside: /x\n    upper: /u\n",
       "intercept.yaml:5:12: files[0].upper: only writecopy rules have an upper directory"},
      {"version: 1\nfiles:\n  - inside: /a\n    mode: hide\n    outside: /x\n",
       "intercept.yaml:5:14: files[0].outside: a hide rule has no outside"},
      {"version: 1\nfiles:\n  - inside: /a\n    outside: /x\n    colour: red\n",
       "intercept.yaml:5:5: files[0].colour: unknown key (known: inside, outside, mode, upper)"},
      {"version: 1\nfiles:\n  - inside: /a/\n    outside: /x\n  - inside: /a\n    outside: /y\n",
       "intercept.yaml:5:5: files[1].inside: \"/a\" is also the inside of files[0] (line 3)"},
      {"version: 1\nenv:\n  - value: x\n", "intercept.yaml:3:5: env[0]: one of set, unset, prepend, append is required"},
      {"version: 1\nenv:\n  - set: A=B\n    value: x\n", "intercept.yaml:3:10: env[0].set: \"A=B\" is not a variable name"},
      {"version: 1\nenv:\n  - set: A\n", "intercept.yaml:3:5: env[0].value: required for set"},
      {"version: 1\nenv:\n  - unset: A\n    value: x\n", "intercept.yaml:4:12: env[0].value: unset takes no value"},
      {"version: 1\nenv:\n  - set: A\n    unset: B\n", "env[0].unset: only one of set, unset, prepend, append"},
      {"version: 1\nenv:\n  - prepend: P\n    value: x\n    separator: \"::\"\n",
       "intercept.yaml:5:16: env[0].separator: \"::\" is not one character"},
      {"version: 1\nnetwork:\n  - inside: 0\n    outside: 1\n", "intercept.yaml:3:13: network[0].inside: port 0 out of range"},
      {"version: 1\nnetwork:\n  - inside: 80\n    outside: 65536\n", "intercept.yaml:4:14: network[0].outside: port 65536 out of range"},
      {"version: 1\nnetwork:\n  - inside: 1.2.3:80\n    outside: 1\n",
       "intercept.yaml:3:13: network[0].inside: \"1.2.3\" is not an IPv4 address"},
      {"version: 1\nnetwork:\n  - inside: \"::1:80\"\n    outside: 1\n", "network[0].inside: \"::1:80\": write IPv6 endpoints as"},
      {"version: 1\nnetwork:\n  - inside: 80\n    outside: 81\n    protocol: sctp\n",
       "intercept.yaml:5:15: network[0].protocol: unknown protocol \"sctp\" (tcp, udp, any)"},
      {"version: 1\nnetwork:\n  - inside: 80\n    outside: 81\n  - inside: 80\n    outside: 82\n    protocol: udp\n",
       "intercept.yaml:5:5: network[1].inside: same inside endpoint as network[0] (line 3)"},
      {"version: 1\nnetwork:\n  - inside: 127.0.0.1:80\n    outside: \"[::1]:81\"\n",
       "network[0].outside: IPv6 address for an IPv4 inside address"},
      {"version: 1\ninterceptors:\n  - name: tracer\n",
       "intercept.yaml:3:11: interceptors[0].name: unknown interceptor \"tracer\" (meter, redirect, net, barrier)"},
      {"version: 1\ninterceptors:\n  - name: meter\n  - name: meter\n",
       "intercept.yaml:4:5: interceptors[1].name: \"meter\" is already interceptors[0] (line 3)"},
      {"version: 1\ninterceptors:\n  - name: meter\n    enabled: maybe\n",
       "intercept.yaml:4:14: interceptors[0].enabled: expected true or false, got \"maybe\""},
      {"version: 1\ninterceptors:\n  - name: redirect\n    options: {exec_static: sometimes}\n",
       "intercept.yaml:4:28: interceptors[0].options.exec_static: \"sometimes\" is not one of deny, warn, allow"},
      {"version: 1\ninterceptors:\n  - name: redirect\n    options: {speed: 3}\n",
       "intercept.yaml:4:15: interceptors[0].options.speed: unknown option of redirect (known: exec_static)"},
      {"version: 1\nfiles: [\n", "intercept.yaml:3:1: "},  // a YAML syntax error keeps its position
  };
  for (const Case& c : cases) {
    INFO(c.yaml);
    CHECK_THAT(parse_err(c.yaml), Catch::Contains(c.want));
  }
}

TEST_CASE("variables: every one expands, $$ is '$', unknown and empty ones are errors", "[intercept_db]") {
  InterceptVars v = vars();
  using idb_yaml::expand_vars;
  CHECK(*expand_vars("${BUNDLE}|${ROOTFS}|${HOME}|${ID}|${STATE}|$$|a$${X}", v) ==
        "/b|/b/rootfs|/home/u|web1|/run/envrun/web1|$|a${X}");
  CHECK_THAT(expand_vars("${NOPE}", v).error().message, Catch::Contains("unknown variable ${NOPE}"));
  CHECK_THAT(expand_vars("a$b", v).error().message, Catch::Contains("write $$ for a literal"));
  CHECK_THAT(expand_vars("${HOME", v).error().message, Catch::Contains("'$' must start ${NAME}"));
  v.home.clear();
  CHECK(*expand_vars("no home used", v) == "no home used");
  CHECK_THAT(expand_vars("${HOME}/x", v).error().message, Catch::Contains("variable ${HOME} is empty"));

  CHECK_THAT(parse_err("version: 1\nfiles:\n  - inside: /a\n    outside: ${HOME}/x\n", v),
             Catch::Contains("intercept.yaml:4:14: files[0].outside: variable ${HOME} is empty"));
  CHECK_THAT(parse_err("version: 1\nenv:\n  - set: A\n    value: ${USER}\n"),
             Catch::Contains("intercept.yaml:4:12: env[0].value: unknown variable ${USER}"));
  v = vars();
  v.state.clear();
  CHECK_THAT(parse_err("version: 1\nfiles:\n  - inside: /a\n    mode: writecopy\n", v),
             Catch::Contains("files[0].upper: the default ${STATE}/upper/0 needs an absolute ${STATE}"));
  CHECK(parse_ok("version: 1\nfiles:\n  - {inside: /a, mode: writecopy, upper: /u}\n", v).files[0].upper == "/u");
}

TEST_CASE("load_intercept_yaml reports unreadable files as Config errors", "[intercept_db]") {
  auto r = load_intercept_yaml("/nonexistent/intercept.yaml", vars());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::Config);
  CHECK_THAT(r.error().message, Catch::Contains("/nonexistent/intercept.yaml: cannot read"));
}

namespace {

const char* kRules = R"(version: 1
files:
  - {inside: /opt/app, outside: /b/app}
  - {inside: /opt/app/data, outside: /b/data, mode: writecopy}
  - {inside: /etc/secret, mode: hide}
  - {inside: /usr, outside: /b/usr, mode: merge}
  - {inside: /usr/lib/x, outside: /b/x, mode: readonly}
)";

std::string compiled(const char* yaml) { return compile_intercept_db(parse_ok(yaml)); }

const char* inside_of(const idb::DbView& v, const char* path) {
  const idb::FileRule* r = v.match(path, std::strlen(path));
  return r ? v.str(r->inside) : "(none)";
}

}  // namespace

TEST_CASE("compiled database opens and resolves the longest component prefix", "[intercept_db]") {
  std::string bytes = compiled(kRules);
  idb::DbView v;
  const char* why = v.open(bytes.data(), bytes.size());
  INFO((why ? why : ""));
  REQUIRE(why == nullptr);
  REQUIRE(v.file_count() == 5);
  CHECK(std::string(v.str(v.header().source)) == "intercept.yaml");
  CHECK(std::string(inside_of(v, "/opt/app")) == "/opt/app");
  CHECK(std::string(inside_of(v, "/opt/app/bin/x")) == "/opt/app");
  CHECK(std::string(inside_of(v, "/opt/app/data")) == "/opt/app/data");
  CHECK(std::string(inside_of(v, "/opt/app/data/db.sqlite")) == "/opt/app/data");
  CHECK(std::string(inside_of(v, "/opt/app/database")) == "/opt/app");     // not /opt/app/data
  CHECK(std::string(inside_of(v, "/opt/application")) == "(none)");        // not /opt/app
  CHECK(std::string(inside_of(v, "/opt")) == "(none)");
  CHECK(std::string(inside_of(v, "/usr/lib/x/y")) == "/usr/lib/x");
  CHECK(std::string(inside_of(v, "/usr/lib/xy")) == "/usr");
  CHECK(std::string(inside_of(v, "/etc/secret")) == "/etc/secret");
  CHECK(std::string(inside_of(v, "/etc/secrets")) == "(none)");
  CHECK(std::string(inside_of(v, "/")) == "(none)");
  const idb::FileRule* r = v.match("/opt/app/data/x", 15);
  REQUIRE(r != nullptr);
  CHECK(r->mode == uint8_t(idb::FileMode::WriteCopy));
  CHECK(r->line == 4);
  CHECK(r->index == 1);
  CHECK(std::string(v.str(r->upper)) == "/run/envrun/web1/upper/1");
  REQUIRE(v.interceptor_count() == 4);
  CHECK(v.interceptor_index("redirect") == 1);
}

TEST_CASE("a root rule matches everything not claimed by a longer one", "[intercept_db]") {
  std::string bytes = compiled("version: 1\nfiles:\n  - {inside: /, outside: /r}\n  - {inside: /tmp, mode: hide}\n");
  idb::DbView v;
  REQUIRE(v.open(bytes.data(), bytes.size()) == nullptr);
  CHECK(std::string(inside_of(v, "/etc/passwd")) == "/");
  CHECK(std::string(inside_of(v, "/")) == "/");
  CHECK(std::string(inside_of(v, "/tmp/x")) == "/tmp");
  CHECK(std::string(inside_of(v, "/tmpfoo")) == "/");
}

TEST_CASE("corrupted or truncated databases are refused; compiling is deterministic", "[intercept_db]") {
  std::string bytes = compiled(kFull);
  idb::DbView v;
  REQUIRE(v.open(bytes.data(), bytes.size()) == nullptr);
  CHECK(bytes == compiled(kFull));

  // Every byte after the header is covered by the checksum.
  for (size_t off : {sizeof(idb::Header), bytes.size() / 2, bytes.size() - 1}) {
    std::string bad = bytes;
    bad[off] ^= 0x01;
    const char* why = v.open(bad.data(), bad.size());
    INFO("offset " << off);
    REQUIRE(why != nullptr);
    CHECK_THAT(why, Catch::Contains("checksum"));
  }
  std::string bad = bytes;
  bad[0] = 'X';
  CHECK_THAT(v.open(bad.data(), bad.size()), Catch::Contains("magic"));
  CHECK(v.open(bytes.data(), bytes.size() - 8) != nullptr);
  CHECK_THAT(v.open(bytes.data(), 16), Catch::Contains("truncated"));
  // A different rule set gives different bytes.
  CHECK(compiled(kRules) != bytes);
}
