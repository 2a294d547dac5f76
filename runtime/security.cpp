// rlimits, oom_score_adj, and the order in which process security is applied.
#include "runtime/security.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "kernel/fs.hpp"
#include "kernel/log.hpp"

namespace envrun::runtime {
namespace {

struct RlimitName {
  const char* name;
  int resource;
};

constexpr RlimitName kRlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

std::string limit_text(uint64_t v) { return v == RLIM_INFINITY ? "unlimited" : std::to_string(v); }

// True in the initial user namespace (uid_map "0 0 4294967295"): there CAP_SYS_RESOURCE
// in our effective set really allows raising hard limits.
bool initial_user_ns() {
  auto map = fs::read_file("/proc/self/uid_map");
  if (!map) return true;
  unsigned long a = 1, b = 1, n = 0;
  return std::sscanf(map->c_str(), "%lu %lu %lu", &a, &b, &n) == 3 && a == 0 && b == 0 && n == 4294967295UL;
}

Result<void> set_one(const oci::Rlimit& rl, int resource, const std::string& field,
                     std::vector<std::string>* warnings) {
  struct rlimit want {rlim_t(rl.soft), rlim_t(rl.hard)};
  if (::setrlimit(resource, &want) == 0) return ok();
  int err = errno;
  struct rlimit cur {};
  if (err == EPERM && ::getrlimit(resource, &cur) == 0 && want.rlim_max > cur.rlim_max &&
      !(has_effective_capability(CAP_SYS_RESOURCE) && initial_user_ns())) {
    struct rlimit clamped {std::min(want.rlim_cur, cur.rlim_max), cur.rlim_max};
    if (::setrlimit(resource, &clamped) != 0) return Error::sys(field + ": setrlimit " + rl.type + " (clamped)");
    std::string w = "rlimit " + rl.type + ": hard limit " + limit_text(rl.hard) + " above the current " +
                    limit_text(cur.rlim_max) + " and CAP_SYS_RESOURCE is missing; clamped";
    if (warnings) {
      warnings->push_back(std::move(w));
    } else {
      log::warn(w);
    }
    return ok();
  }
  return Error::sys(field + ": setrlimit " + rl.type + " (soft " + limit_text(rl.soft) + ", hard " +
                        limit_text(rl.hard) + ")",
                    err);
}

}  // namespace

int rlimit_from_name(const std::string& name) {
  for (const auto& r : kRlimits)
    if (name == r.name) return r.resource;
  return -1;
}

Result<void> apply_rlimits(const std::vector<oci::Rlimit>& rlimits, std::vector<std::string>* warnings) {
  std::vector<int> resources;
  for (size_t i = 0; i < rlimits.size(); ++i) {
    std::string field = "process.rlimits[" + std::to_string(i) + "]";
    int res = rlimit_from_name(rlimits[i].type);
    if (res < 0)
      return Error::make(ErrorKind::Config, field + ".type: unknown rlimit \"" + rlimits[i].type + "\"");
    if (rlimits[i].soft > rlimits[i].hard)
      return Error::make(ErrorKind::Config, field + ": soft limit " + limit_text(rlimits[i].soft) +
                                                " is above the hard limit " + limit_text(rlimits[i].hard));
    resources.push_back(res);
  }
  for (size_t i = 0; i < rlimits.size(); ++i)
    ENVRUN_CHECK(set_one(rlimits[i], resources[i], "process.rlimits[" + std::to_string(i) + "]", warnings));
  return ok();
}

Result<void> apply_oom_score_adj(int value, std::vector<std::string>* warnings) {
  if (value < -1000 || value > 1000)
    return Error::make(ErrorKind::Config,
                       "process.oomScoreAdj: " + std::to_string(value) + " is outside -1000..1000");
  auto w = fs::write_file("/proc/self/oom_score_adj", std::to_string(value));
  if (w) return ok();
  if (warnings && (w.error().sys_errno == EACCES || w.error().sys_errno == EPERM)) {
    auto cur = fs::read_file("/proc/self/oom_score_adj");
    warnings->push_back("process.oomScoreAdj: " + std::to_string(value) + " is below what may be set without " +
                        "CAP_SYS_RESOURCE; kept " + (cur ? std::to_string(std::atoi(cur->c_str())) : "as is"));
    return ok();
  }
  return std::move(w).error().with_context("process.oomScoreAdj");
}

Result<void> apply_process_security(const oci::Process& proc, const std::optional<oci::Seccomp>& seccomp,
                                    std::vector<std::string>* warnings) {
  std::optional<SeccompFilter> filter;
  if (seccomp) {
    auto built = SeccompFilter::build(*seccomp);
    if (!built) return std::move(built).error();
    filter.emplace(std::move(*built));
  }
  ENVRUN_CHECK(apply_rlimits(proc.rlimits, warnings));
  if (proc.oom_score_adj) ENVRUN_CHECK(apply_oom_score_adj(*proc.oom_score_adj, warnings));
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it while we still have it.
  if (filter && !proc.no_new_privileges) ENVRUN_CHECK(filter->load());
  ENVRUN_CHECK(apply_user_and_capabilities(proc.user, proc.capabilities));
  if (proc.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return Error::sys("process.noNewPrivileges: prctl(PR_SET_NO_NEW_PRIVS)");
  // With no_new_privs, load last so that fewer of our own syscalls run under the filter.
  if (filter && proc.no_new_privileges) ENVRUN_CHECK(filter->load());
  return ok();
}

}  // namespace envrun::runtime
