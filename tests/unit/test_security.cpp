// runtime/security: rlimits, user/groups, capabilities, seccomp, no_new_privs.
// Every case that changes process state runs in a forked child that reports
// "key=value" lines over a pipe and _exits; the parent asserts.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "kernel/fs.hpp"
#include "runtime/security.hpp"

using namespace envrun;
using namespace envrun::runtime;

namespace {

struct ChildResult {
  int status = 0;
  std::map<std::string, std::string> kv;
  std::string raw;
};

// Run fn in a forked child; fn gets the write end of the report pipe and returns
// "key=value\n" lines. The child never returns into Catch2.
ChildResult in_child(const std::function<std::string(int)>& fn) {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(p[0]);
    std::string out;
    try {
      out = fn(p[1]);
    } catch (...) {
      out = "exception=1\n";
    }
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = ::write(p[1], out.data() + off, out.size() - off);
      if (n <= 0) break;
      off += size_t(n);
    }
    ::_exit(0);
  }
  ::close(p[1]);
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) r.raw.append(buf, size_t(n));
  ::close(p[0]);
  REQUIRE(::waitpid(pid, &r.status, 0) == pid);
  std::istringstream in(r.raw);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) r.kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return r;
}

bool exited_ok(const ChildResult& r) { return WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0; }

// "CapEff" -> "0000000000000420" from /proc/self/status.
std::string status_field(const std::string& name) {
  auto s = fs::read_file("/proc/self/status");
  if (!s) return "";
  std::istringstream in(*s);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) {
      auto v = line.substr(name.size() + 1);
      while (!v.empty() && (v[0] == '\t' || v[0] == ' ')) v.erase(0, 1);
      return v;
    }
  }
  return "";
}

std::string line(const std::string& k, const std::string& v) { return k + "=" + v + "\n"; }
std::string line(const std::string& k, long long v) { return line(k, std::to_string(v)); }

std::string report_result(const Result<void>& r) {
  return line("ok", r.ok() ? 1 : 0) + (r.ok() ? "" : line("error", r.error().message) +
                                                      line("kind", int(r.error().kind)));
}

// "rc errno" of a raw syscall, so that the caller sees exactly what the filter did.
std::string sys_outcome(long rc) { return rc < 0 ? "-1/" + std::to_string(errno) : "ok"; }

void drop_effective(int cap) {
  cap_t c = cap_get_proc();
  cap_value_t v = cap;
  cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR);
  cap_set_proc(c);
  cap_free(c);
}

oci::Capabilities only(std::vector<std::string> names, std::vector<std::string> ambient = {}) {
  oci::Capabilities c;
  c.bounding = c.effective = c.inheritable = c.permitted = names;
  c.ambient = std::move(ambient);
  return c;
}

oci::SeccompSyscall rule(std::vector<std::string> names, std::string action,
                         std::optional<uint32_t> errno_ret = std::nullopt,
                         std::vector<oci::SeccompArg> args = {}) {
  oci::SeccompSyscall s;
  s.names = std::move(names);
  s.action = std::move(action);
  s.errno_ret = errno_ret;
  s.args = std::move(args);
  return s;
}

oci::Seccomp allow_except(std::vector<oci::SeccompSyscall> rules) {
  oci::Seccomp s;
  s.default_action = "SCMP_ACT_ALLOW";
  s.syscalls = std::move(rules);
  return s;
}

}  // namespace

// ---------------------------------------------------------------- rlimits

TEST_CASE("rlimits: NOFILE soft/hard are applied", "[security][rlimit]") {
  auto r = in_child([](int) {
    std::vector<std::string> warnings;
    auto res = apply_rlimits({{"RLIMIT_NOFILE", 1024, 512}, {"RLIMIT_CORE", 0, 0}}, &warnings);
    struct rlimit nofile {}, core {};
    ::getrlimit(RLIMIT_NOFILE, &nofile);
    ::getrlimit(RLIMIT_CORE, &core);
    return report_result(res) + line("soft", nofile.rlim_cur) + line("hard", nofile.rlim_max) +
           line("core_hard", core.rlim_max) + line("warnings", warnings.size());
  });
  REQUIRE(exited_ok(r));
  CHECK(r.kv["ok"] == "1");
  CHECK(r.kv["soft"] == "512");
  CHECK(r.kv["hard"] == "1024");
  CHECK(r.kv["core_hard"] == "0");
  CHECK(r.kv["warnings"] == "0");
}

TEST_CASE("rlimits: hard limit above the current one is clamped with one warning", "[security][rlimit]") {
  auto r = in_child([](int) {
    drop_effective(CAP_SYS_RESOURCE);  // deterministic even where root has it
    struct rlimit cur {};
    ::getrlimit(RLIMIT_NOFILE, &cur);
    if (cur.rlim_max == RLIM_INFINITY || cur.rlim_max > 100000) {
      cur = {2048, 4096};
      ::setrlimit(RLIMIT_NOFILE, &cur);
    }
    std::vector<std::string> warnings;
    auto res = apply_rlimits({{"RLIMIT_NOFILE", cur.rlim_max + 1000, cur.rlim_max + 500}, {"RLIMIT_CORE", 0, 0}},
                             &warnings);
    struct rlimit now {}, core {};
    ::getrlimit(RLIMIT_NOFILE, &now);
    ::getrlimit(RLIMIT_CORE, &core);
    std::string out = report_result(res) + line("prev_hard", cur.rlim_max) + line("soft", now.rlim_cur) +
                      line("hard", now.rlim_max) + line("core_hard", core.rlim_max) +
                      line("warnings", warnings.size());
    if (!warnings.empty()) out += line("warning", warnings[0]);
    return out;
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  const std::string prev = r.kv["prev_hard"];
  CHECK(r.kv["hard"] == prev);
  CHECK(r.kv["soft"] == prev);
  CHECK(r.kv["core_hard"] == "0");  // the next entry is still applied
  REQUIRE(r.kv["warnings"] == "1");
  CHECK(r.kv["warning"] == "rlimit RLIMIT_NOFILE: hard limit " + std::to_string(std::stoull(prev) + 1000) +
                               " above the current " + prev + " and CAP_SYS_RESOURCE is missing; clamped");
}

TEST_CASE("rlimits: unknown type and soft above hard are config errors, nothing applied", "[security][rlimit]") {
  auto r = in_child([](int) {
    auto unknown = apply_rlimits({{"RLIMIT_CORE", 0, 0}, {"RLIMIT_FOO", 10, 10}}, nullptr);
    struct rlimit core {};
    ::getrlimit(RLIMIT_CORE, &core);
    auto inverted = apply_rlimits({{"RLIMIT_NOFILE", 100, 200}}, nullptr);
    return report_result(unknown) + line("core_hard", core.rlim_max) +
           line("inverted_error", inverted.ok() ? "" : inverted.error().message);
  });
  REQUIRE(exited_ok(r));
  CHECK(r.kv["ok"] == "0");
  CHECK(r.kv["error"] == "process.rlimits[1].type: unknown rlimit \"RLIMIT_FOO\"");
  CHECK(r.kv["kind"] == std::to_string(int(ErrorKind::Config)));
  CHECK(r.kv["core_hard"] != "0");  // validated before anything was applied
  CHECK(r.kv["inverted_error"] == "process.rlimits[0]: soft limit 200 is above the hard limit 100");
}

TEST_CASE("rlimits: all sixteen names map", "[security][rlimit]") {
  CHECK(rlimit_from_name("RLIMIT_CPU") == RLIMIT_CPU);
  CHECK(rlimit_from_name("RLIMIT_NOFILE") == RLIMIT_NOFILE);
  CHECK(rlimit_from_name("RLIMIT_RTTIME") == RLIMIT_RTTIME);
  CHECK(rlimit_from_name("RLIMIT_MSGQUEUE") == RLIMIT_MSGQUEUE);
  CHECK(rlimit_from_name("nofile") == -1);
  std::set<int> seen;
  for (const char* n : {"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
                        "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
                        "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME"})
    seen.insert(rlimit_from_name(n));
  CHECK(seen.size() == 16);
  CHECK(seen.count(-1) == 0);
}

// ---------------------------------------------------------------- capabilities

TEST_CASE("capabilities: names map to the kernel ABI numbers", "[security][caps]") {
  CHECK(capability_from_name("CAP_CHOWN") == 0);
  CHECK(capability_from_name("CAP_KILL") == 5);
  CHECK(capability_from_name("CAP_NET_BIND_SERVICE") == 10);
  CHECK(capability_from_name("CAP_SYS_ADMIN") == 21);
  CHECK(capability_from_name("CAP_SYS_RESOURCE") == 24);
  CHECK(capability_from_name("CAP_AUDIT_READ") == 37);
  CHECK(capability_from_name("CAP_PERFMON") == 38);
  CHECK(capability_from_name("CAP_BPF") == 39);
  CHECK(capability_from_name("CAP_CHECKPOINT_RESTORE") == 40);
  CHECK(capability_from_name("CAP_FOO") == -1);
  CHECK(capability_from_name("cap_chown") == -1);
  for (int c = 0; c <= 40; ++c) CHECK(capability_from_name(capability_name(c)) == c);
  auto last = fs::read_file("/proc/sys/kernel/cap_last_cap");
  REQUIRE(last);
  CHECK(last_capability() == std::atoi(last->c_str()));
}

TEST_CASE("capabilities: only KILL and NET_BIND_SERVICE remain after switching to uid 1000", "[security][caps]") {
  auto r = in_child([](int) {
    oci::User u;
    u.uid = 1000;
    u.gid = 1000;
    auto res = apply_user_and_capabilities(u, only({"CAP_KILL", "CAP_NET_BIND_SERVICE"}, {"CAP_NET_BIND_SERVICE"}));
    std::string out = report_result(res);
    for (const char* f : {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb", "Uid", "Gid"})
      out += line(f, status_field(f));
    out += line("keepcaps", ::prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    return out;
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["CapEff"] == "0000000000000420");
  CHECK(r.kv["CapPrm"] == "0000000000000420");
  CHECK(r.kv["CapInh"] == "0000000000000420");
  CHECK(r.kv["CapBnd"] == "0000000000000420");
  CHECK(r.kv["CapAmb"] == "0000000000000400");
  CHECK(r.kv["Uid"] == "1000\t1000\t1000\t1000");
  CHECK(r.kv["Gid"] == "1000\t1000\t1000\t1000");
  CHECK(r.kv["keepcaps"] == "0");
}

TEST_CASE("capabilities: the ambient set survives execve as a non-root user", "[security][caps]") {
  auto r = in_child([](int out_fd) -> std::string {
    oci::User u;
    u.uid = 1000;
    u.gid = 1000;
    auto res = apply_user_and_capabilities(u, only({"CAP_KILL", "CAP_NET_BIND_SERVICE"}, {"CAP_NET_BIND_SERVICE"}));
    if (!res) return report_result(res);
    ::dup2(out_fd, 1);
    // Prints "CapEff:\t0000000000000400" etc; turned into key=value by sed.
    ::execl("/bin/sh", "sh", "-c", "echo ok=1; sed -n 's/^\\(Cap[A-Za-z]*\\):\\t/\\1=/p' /proc/self/status",
            (char*)nullptr);
    return line("exec_failed", errno);
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["CapAmb"] == "0000000000000400");
  CHECK(r.kv["CapEff"] == "0000000000000400");  // only the ambient capability after exec
  CHECK(r.kv["CapPrm"] == "0000000000000400");
  CHECK(r.kv["CapBnd"] == "0000000000000420");
}

TEST_CASE("user: uid, gid, additional gids and umask applied; no capabilities left", "[security][user]") {
  auto r = in_child([](int) {
    oci::User u;
    u.uid = 1000;
    u.gid = 1001;
    u.additional_gids = {2000, 3000};
    u.umask = 027;
    auto res = apply_user_and_capabilities(u, std::nullopt);
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    ::getresuid(&ru, &eu, &su);
    ::getresgid(&rg, &eg, &sg);
    gid_t groups[16];
    int n = ::getgroups(16, groups);
    std::string g;
    for (int i = 0; i < n; ++i) g += (i ? "," : "") + std::to_string(groups[i]);
    mode_t old = ::umask(0);
    return report_result(res) + line("uids", std::to_string(ru) + "," + std::to_string(eu) + "," + std::to_string(su)) +
           line("gids", std::to_string(rg) + "," + std::to_string(eg) + "," + std::to_string(sg)) + line("groups", g) +
           line("umask", old) + line("CapEff", status_field("CapEff")) + line("CapPrm", status_field("CapPrm"));
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["uids"] == "1000,1000,1000");
  CHECK(r.kv["gids"] == "1001,1001,1001");
  CHECK(r.kv["groups"] == "2000,3000");
  CHECK(r.kv["umask"] == std::to_string(027));
  CHECK(r.kv["CapEff"] == "0000000000000000");
  CHECK(r.kv["CapPrm"] == "0000000000000000");
}

TEST_CASE("user: root without a capabilities section keeps its capabilities", "[security][user]") {
  const std::string before = status_field("CapEff");
  const std::string bnd = status_field("CapBnd");
  auto r = in_child([](int) {
    oci::User u;
    u.additional_gids = {5};
    auto res = apply_user_and_capabilities(u, std::nullopt);
    gid_t groups[4];
    int n = ::getgroups(4, groups);
    return report_result(res) + line("CapEff", status_field("CapEff")) + line("CapBnd", status_field("CapBnd")) +
           line("ngroups", n) + line("group0", n > 0 ? (long long)groups[0] : -1LL);
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["CapEff"] == before);
  CHECK(r.kv["CapBnd"] == bnd);
  CHECK(r.kv["ngroups"] == "1");
  CHECK(r.kv["group0"] == "5");
}

TEST_CASE("capabilities: an unknown name is a config error naming the set, nothing changed; a stray ambient cap is skipped", "[security][caps]") {
  auto r = in_child([](int) {
    oci::User u;
    u.uid = 1000;
    auto caps = only({"CAP_KILL"});
    caps.effective.push_back("CAP_FOO");
    auto res = apply_user_and_capabilities(u, caps);
    std::string before = report_result(res) + line("uid", ::getuid()) + line("CapBnd", status_field("CapBnd"));
    // An ambient capability outside permitted+inheritable is skipped (runc compatible), not an error.
    auto amb = apply_user_and_capabilities(u, only({"CAP_KILL"}, {"CAP_NET_RAW"}));
    return before + line("ambient_ok", amb.ok() ? 1 : 0) + line("CapAmb", status_field("CapAmb"));
  });
  REQUIRE(exited_ok(r));
  CHECK(r.kv["ok"] == "0");
  CHECK(r.kv["error"] == "process.capabilities.effective: unknown capability \"CAP_FOO\"");
  CHECK(r.kv["kind"] == std::to_string(int(ErrorKind::Config)));
  CHECK(r.kv["uid"] == "0");
  CHECK(r.kv["CapBnd"] == status_field("CapBnd"));
  CHECK(r.kv["ambient_ok"] == "1");
  CHECK(r.kv["CapAmb"] == "0000000000000000");
}

// ---------------------------------------------------------------- seccomp

TEST_CASE("seccomp: ERRNO rules return EPERM by default and errnoRet when given", "[security][seccomp]") {
  char dir[] = "/tmp/envrun-sec-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  std::string sub = std::string(dir) + "/sub";
  auto r = in_child([&](int) {
    auto res = load_seccomp(allow_except({rule({"getppid", "mkdir"}, "SCMP_ACT_ERRNO"),
                                          rule({"getpid"}, "SCMP_ACT_ERRNO", 38)}));
    std::string out = report_result(res);
    out += line("getppid", sys_outcome(::syscall(SYS_getppid)));
    out += line("mkdir", sys_outcome(::syscall(SYS_mkdir, sub.c_str(), 0700)));
    out += line("getpid", sys_outcome(::syscall(SYS_getpid)));
    out += line("getuid", sys_outcome(::syscall(SYS_getuid)));
    out += line("Seccomp", status_field("Seccomp"));
    out += line("NoNewPrivs", status_field("NoNewPrivs"));
    return out;
  });
  bool made = fs::exists(sub);
  ::rmdir(sub.c_str());
  ::rmdir(dir);
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["getppid"] == "-1/" + std::to_string(EPERM));
  CHECK(r.kv["mkdir"] == "-1/" + std::to_string(EPERM));
  CHECK_FALSE(made);
  CHECK(r.kv["getpid"] == "-1/38");
  CHECK(r.kv["getuid"] == "ok");
  CHECK(r.kv["Seccomp"] == "2");
  CHECK(r.kv["NoNewPrivs"] == "0");  // loading alone does not set no_new_privs
}

TEST_CASE("seccomp: argument conditions match only the given values", "[security][seccomp]") {
  auto r = in_child([](int) {
    oci::SeccompArg query{0, 0xffffffffULL, 0, "SCMP_CMP_EQ"};
    oci::SeccompArg world_bits{0, 0007, 0007, "SCMP_CMP_MASKED_EQ"};  // (mask & arg) == valueTwo
    auto res = load_seccomp(allow_except({rule({"personality"}, "SCMP_ACT_ERRNO", EDOM, {query}),
                                          rule({"umask"}, "SCMP_ACT_ERRNO", EACCES, {world_bits})}));
    std::string out = report_result(res);
    out += line("personality_query", sys_outcome(::syscall(SYS_personality, 0xffffffffUL)));
    out += line("personality_linux", sys_outcome(::syscall(SYS_personality, 0UL)));
    out += line("umask_0777", sys_outcome(::syscall(SYS_umask, 0777)));
    out += line("umask_0770", sys_outcome(::syscall(SYS_umask, 0770)));
    out += line("umask_0022", sys_outcome(::syscall(SYS_umask, 0022)));
    return out;
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["personality_query"] == "-1/" + std::to_string(EDOM));
  CHECK(r.kv["personality_linux"] == "ok");
  CHECK(r.kv["umask_0777"] == "-1/" + std::to_string(EACCES));
  CHECK(r.kv["umask_0770"] == "ok");
  CHECK(r.kv["umask_0022"] == "ok");
}

TEST_CASE("seccomp: KILL, KILL_PROCESS and TRAP end the process with SIGSYS", "[security][seccomp]") {
  for (const char* action : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"}) {
    INFO(action);
    auto r = in_child([&](int) {
      struct rlimit nocore {0, 0};
      ::setrlimit(RLIMIT_CORE, &nocore);
      auto res = load_seccomp(allow_except({rule({"getppid"}, action)}));
      if (!res) return report_result(res);
      ::syscall(SYS_getppid);
      return line("survived", 1);
    });
    CHECK(r.raw == "");
    REQUIRE(WIFSIGNALED(r.status));
    CHECK(WTERMSIG(r.status) == SIGSYS);
  }
}

TEST_CASE("seccomp: SCMP_ACT_NOTIFY and listenerPath are rejected", "[security][seccomp]") {
  auto as_rule = SeccompFilter::build(allow_except({rule({"getppid"}, "SCMP_ACT_NOTIFY")}));
  REQUIRE_FALSE(as_rule.ok());
  CHECK(as_rule.error().message == "linux.seccomp: SCMP_ACT_NOTIFY is not supported");
  CHECK(as_rule.error().kind == ErrorKind::Config);

  oci::Seccomp def;
  def.default_action = "SCMP_ACT_NOTIFY";
  auto as_default = SeccompFilter::build(def);
  REQUIRE_FALSE(as_default.ok());
  CHECK(as_default.error().message == "linux.seccomp: SCMP_ACT_NOTIFY is not supported");

  auto listener = allow_except({rule({"getppid"}, "SCMP_ACT_ERRNO")});
  listener.listener_path = "/run/seccomp-agent.sock";
  auto with_listener = SeccompFilter::build(listener);
  REQUIRE_FALSE(with_listener.ok());
  CHECK(with_listener.error().message == "linux.seccomp: SCMP_ACT_NOTIFY is not supported");
  CHECK(status_field("Seccomp") == "0");  // building never loads
}

TEST_CASE("seccomp: unknown syscall names are skipped", "[security][seccomp]") {
  auto spec = allow_except({rule({"envrun_no_such_syscall", "getppid"}, "SCMP_ACT_ERRNO")});
  auto f = SeccompFilter::build(spec);
  REQUIRE(f.ok());
  CHECK(f->names_skipped() == 1);
  CHECK(f->rules_added() == 1);
  auto r = in_child([&](int) {
    auto res = load_seccomp(spec);
    return report_result(res) + line("getppid", sys_outcome(::syscall(SYS_getppid)));
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["getppid"] == "-1/" + std::to_string(EPERM));
}

TEST_CASE("seccomp: filters are built and measured without loading", "[security][seccomp]") {
  auto small = SeccompFilter::build(allow_except({rule({"getppid"}, "SCMP_ACT_ERRNO")}));
  REQUIRE(small.ok());
  auto small_size = small->bpf_size();
  REQUIRE(small_size.ok());
  CHECK(*small_size > 0);
  CHECK(*small_size % 8 == 0);  // struct sock_filter is 8 bytes

  // A rule equal to the default action is skipped; same-index conditions become separate rules.
  oci::SeccompArg a{0, 1, 0, "SCMP_CMP_EQ"}, b{0, 2, 0, "SCMP_CMP_EQ"};
  auto spec = allow_except({rule({"getppid"}, "SCMP_ACT_ERRNO"), rule({"getpid"}, "SCMP_ACT_ALLOW"),
                            rule({"personality"}, "SCMP_ACT_ERRNO", EDOM, {a, b}), rule({"getuid"}, "SCMP_ACT_LOG")});
  spec.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  spec.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
  auto big = SeccompFilter::build(spec);
  REQUIRE(big.ok());
  CHECK(big->rules_added() == 4);  // getppid, personality x2, getuid
  auto big_size = big->bpf_size();
  REQUIRE(big_size.ok());
  CHECK(*big_size > *small_size);

  // The same rule for three architectures compiles to more BPF than for the native one.
  auto multi_spec = allow_except({rule({"getppid"}, "SCMP_ACT_ERRNO")});
  multi_spec.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  auto multi = SeccompFilter::build(multi_spec);
  REQUIRE(multi.ok());
  auto multi_size = multi->bpf_size();
  REQUIRE(multi_size.ok());
  CHECK(*multi_size > *small_size);
  CHECK(status_field("Seccomp") == "0");
}

TEST_CASE("seccomp: errors name the field", "[security][seccomp]") {
  auto bad_action = allow_except({rule({"getppid"}, "SCMP_ACT_ERRNO"), rule({"getpid"}, "SCMP_ACT_ERRNO"),
                                  rule({"getuid"}, "SCMP_ACT_ERRNO"), rule({"getgid"}, "SCMP_ACT_FOO")});
  auto r1 = SeccompFilter::build(bad_action);
  REQUIRE_FALSE(r1.ok());
  CHECK(r1.error().message == "linux.seccomp.syscalls[3]: unknown action \"SCMP_ACT_FOO\"");
  CHECK(r1.error().kind == ErrorKind::Config);

  auto bad_op = allow_except({rule({"personality"}, "SCMP_ACT_ERRNO", std::nullopt, {{0, 1, 0, "SCMP_CMP_FOO"}})});
  auto r2 = SeccompFilter::build(bad_op);
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().message == "linux.seccomp.syscalls[0].args[0]: unknown operator \"SCMP_CMP_FOO\"");

  auto bad_index = allow_except({rule({"personality"}, "SCMP_ACT_ERRNO", std::nullopt, {{6, 1, 0, "SCMP_CMP_EQ"}})});
  auto r3 = SeccompFilter::build(bad_index);
  REQUIRE_FALSE(r3.ok());
  CHECK(r3.error().message == "linux.seccomp.syscalls[0].args[0]: index 6 is above 5");

  auto errno_on_allow = allow_except({rule({"getppid"}, "SCMP_ACT_KILL", 1)});
  auto r4 = SeccompFilter::build(errno_on_allow);
  REQUIRE_FALSE(r4.ok());
  CHECK(r4.error().message ==
        "linux.seccomp.syscalls[0]: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_KILL");

  auto bad_arch = allow_except({});
  bad_arch.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_FOO"};
  auto r5 = SeccompFilter::build(bad_arch);
  REQUIRE_FALSE(r5.ok());
  CHECK(r5.error().message == "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_FOO\"");

  auto bad_flag = allow_except({});
  bad_flag.flags = {"SECCOMP_FILTER_FLAG_BOGUS"};
  auto r6 = SeccompFilter::build(bad_flag);
  REQUIRE_FALSE(r6.ok());
  CHECK(r6.error().message == "linux.seccomp.flags[0]: unsupported flag \"SECCOMP_FILTER_FLAG_BOGUS\"");

  oci::Seccomp bad_default;
  bad_default.default_action = "SCMP_ACT_BAR";
  auto r7 = SeccompFilter::build(bad_default);
  REQUIRE_FALSE(r7.ok());
  CHECK(r7.error().message == "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_BAR\"");
}

TEST_CASE("seccomp: a default ERRNO filter with errnoRet applies to unlisted syscalls", "[security][seccomp]") {
  auto r = in_child([](int) {
    oci::Seccomp s;
    s.default_action = "SCMP_ACT_ERRNO";
    s.default_errno_ret = ENOSYS;
    // What the child itself still needs after loading: memory, write, exit.
    s.syscalls = {rule({"write", "exit", "exit_group", "brk", "mmap", "munmap", "mremap", "madvise",
                        "rt_sigprocmask", "rt_sigreturn", "futex", "getppid"},
                       "SCMP_ACT_ALLOW")};
    auto res = load_seccomp(s);
    long ppid = ::syscall(SYS_getppid);
    int ppid_errno = errno;
    long uid = ::syscall(SYS_getuid);
    int uid_errno = errno;
    errno = ppid_errno;
    std::string out = report_result(res) + line("getppid", sys_outcome(ppid));
    errno = uid_errno;
    return out + line("getuid", sys_outcome(uid));
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["getppid"] == "ok");
  CHECK(r.kv["getuid"] == "-1/" + std::to_string(ENOSYS));
}

// ---------------------------------------------------------------- the whole sequence

TEST_CASE("process security: noNewPrivileges sets NoNewPrivs and loads seccomp last", "[security][process]") {
  auto r = in_child([](int) {
    oci::Process p;
    p.user.uid = 1000;
    p.user.gid = 1000;
    p.capabilities = only({"CAP_KILL"});
    p.no_new_privileges = true;
    p.rlimits = {{"RLIMIT_NOFILE", 1024, 256}};
    std::vector<std::string> warnings;
    auto res = apply_process_security(p, allow_except({rule({"getppid"}, "SCMP_ACT_ERRNO")}), &warnings);
    struct rlimit nofile {};
    ::getrlimit(RLIMIT_NOFILE, &nofile);
    return report_result(res) + line("NoNewPrivs", status_field("NoNewPrivs")) +
           line("Seccomp", status_field("Seccomp")) + line("CapEff", status_field("CapEff")) +
           line("uid", ::getuid()) + line("soft", nofile.rlim_cur) +
           line("getppid", sys_outcome(::syscall(SYS_getppid)));
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["NoNewPrivs"] == "1");
  CHECK(r.kv["Seccomp"] == "2");
  CHECK(r.kv["CapEff"] == "0000000000000020");
  CHECK(r.kv["uid"] == "1000");
  CHECK(r.kv["soft"] == "256");
  CHECK(r.kv["getppid"] == "-1/" + std::to_string(EPERM));
}

TEST_CASE("process security: without noNewPrivileges seccomp is loaded while CAP_SYS_ADMIN is held",
          "[security][process]") {
  auto r = in_child([](int) {
    oci::Process p;
    p.user.uid = 1000;
    p.user.gid = 1000;
    p.capabilities = only({"CAP_KILL"});
    p.oom_score_adj = 500;
    std::vector<std::string> warnings;
    auto res = apply_process_security(p, allow_except({rule({"getppid"}, "SCMP_ACT_ERRNO")}), &warnings);
    auto oom = fs::read_file("/proc/self/oom_score_adj");
    return report_result(res) + line("NoNewPrivs", status_field("NoNewPrivs")) +
           line("Seccomp", status_field("Seccomp")) + line("uid", ::getuid()) +
           line("oom", oom ? std::to_string(std::atoi(oom->c_str())) : "?") +
           line("getppid", sys_outcome(::syscall(SYS_getppid)));
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["NoNewPrivs"] == "0");
  CHECK(r.kv["Seccomp"] == "2");
  CHECK(r.kv["uid"] == "1000");
  CHECK(r.kv["oom"] == "500");
  CHECK(r.kv["getppid"] == "-1/" + std::to_string(EPERM));
}

TEST_CASE("process security: a bad seccomp config fails before anything changes", "[security][process]") {
  auto r = in_child([](int) {
    oci::Process p;
    p.user.uid = 1000;
    p.rlimits = {{"RLIMIT_CORE", 0, 0}};
    auto res = apply_process_security(p, allow_except({rule({"getppid"}, "SCMP_ACT_NOTIFY")}), nullptr);
    struct rlimit core {};
    ::getrlimit(RLIMIT_CORE, &core);
    return report_result(res) + line("uid", ::getuid()) + line("core_hard", core.rlim_max);
  });
  REQUIRE(exited_ok(r));
  CHECK(r.kv["ok"] == "0");
  CHECK(r.kv["error"] == "linux.seccomp: SCMP_ACT_NOTIFY is not supported");
  CHECK(r.kv["uid"] == "0");
  CHECK(r.kv["core_hard"] != "0");
}

TEST_CASE("oom_score_adj: raised in-process; out of range rejected", "[security][oom]") {
  auto r = in_child([](int) {
    auto res = apply_oom_score_adj(300);
    auto oom = fs::read_file("/proc/self/oom_score_adj");
    auto bad = apply_oom_score_adj(1001);
    return report_result(res) + line("oom", oom ? std::to_string(std::atoi(oom->c_str())) : "?") +
           line("bad", bad.ok() ? "" : bad.error().message);
  });
  REQUIRE(exited_ok(r));
  REQUIRE(r.kv["ok"] == "1");
  CHECK(r.kv["oom"] == "300");
  CHECK(r.kv["bad"] == "process.oomScoreAdj: 1001 is outside -1000..1000");
}
