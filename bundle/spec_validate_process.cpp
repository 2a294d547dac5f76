// validate_spec, process section: args, cwd, capabilities, rlimits, oomScoreAdj,
// scheduler and I/O priority.
#include <set>

#include "bundle/spec_decode.hpp"
#include "bundle/spec_validate.hpp"

namespace envrun::bundle::detail {

namespace {

Result<void> validate_capabilities(const oci::Capabilities& caps, const std::string& file) {
  std::pair<const char*, const std::vector<std::string>*> sets[] = {
      {"bounding", &caps.bounding},   {"effective", &caps.effective},
      {"inheritable", &caps.inheritable}, {"permitted", &caps.permitted},
      {"ambient", &caps.ambient},
  };
  for (auto& [set, names] : sets) {
    for (size_t i = 0; i < names->size(); ++i)
      if (!known_capability((*names)[i]))
        return invalid(file,
                       std::string("process.capabilities.") + set + "[" + std::to_string(i) + "]",
                       "unknown capability " + quote((*names)[i]));
  }
  return ok();
}

Result<void> validate_rlimits(const std::vector<oci::Rlimit>& rlimits, const std::string& file) {
  std::set<std::string> seen;
  for (size_t i = 0; i < rlimits.size(); ++i) {
    std::string at = "process.rlimits[" + std::to_string(i) + "]";
    const oci::Rlimit& r = rlimits[i];
    if (r.type.empty()) return invalid(file, at + ".type", "missing");
    if (!known_rlimit(r.type)) return invalid(file, at + ".type", "unknown rlimit " + quote(r.type));
    if (!seen.insert(r.type).second)
      return invalid(file, at + ".type", "duplicate rlimit " + quote(r.type));
    if (r.soft > r.hard)
      return invalid(file, at,
                     "soft limit " + std::to_string(r.soft) + " exceeds hard limit " +
                         std::to_string(r.hard) + " for " + r.type);
  }
  return ok();
}

Result<void> validate_scheduler(const oci::Scheduler& s, const std::string& file) {
  static const std::set<std::string> policies = {
      "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR",      "SCHED_BATCH",
      "SCHED_ISO",   "SCHED_IDLE", "SCHED_DEADLINE",
  };
  static const std::set<std::string> flags = {
      "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM",        "SCHED_FLAG_DL_OVERRUN",
      "SCHED_FLAG_KEEP_POLICY",   "SCHED_FLAG_KEEP_PARAMS",    "SCHED_FLAG_UTIL_CLAMP_MIN",
      "SCHED_FLAG_UTIL_CLAMP_MAX",
  };
  if (s.policy.empty()) return invalid(file, "process.scheduler.policy", "missing");
  if (!policies.count(s.policy))
    return invalid(file, "process.scheduler.policy", "unknown policy " + quote(s.policy));
  for (size_t i = 0; i < s.flags.size(); ++i)
    if (!flags.count(s.flags[i]))
      return invalid(file, "process.scheduler.flags[" + std::to_string(i) + "]",
                     "unknown flag " + quote(s.flags[i]));
  if (s.nice && (*s.nice < -20 || *s.nice > 19))
    return invalid(file, "process.scheduler.nice",
                   "must be between -20 and 19, got " + std::to_string(*s.nice));
  return ok();
}

Result<void> validate_io_priority(const oci::IoPriority& io, const std::string& file) {
  if (io.io_class != "IOPRIO_CLASS_RT" && io.io_class != "IOPRIO_CLASS_BE" &&
      io.io_class != "IOPRIO_CLASS_IDLE")
    return invalid(file, "process.ioPriority.class",
                   "expected IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE, got " +
                       quote(io.io_class));
  if (io.priority < 0 || io.priority > 7)
    return invalid(file, "process.ioPriority.priority",
                   "must be between 0 and 7, got " + std::to_string(io.priority));
  return ok();
}

}  // namespace

Result<void> validate_process(const oci::Process& p, const std::string& file) {
  if (p.args.empty())
    return Error::make(ErrorKind::Config, file + ": process.args must not be empty");
  if (p.cwd.empty()) return invalid(file, "process.cwd", "missing");
  if (p.cwd[0] != '/')
    return invalid(file, "process.cwd", "must be an absolute path, got " + quote(p.cwd));
  if (p.capabilities) ENVRUN_CHECK(validate_capabilities(*p.capabilities, file));
  ENVRUN_CHECK(validate_rlimits(p.rlimits, file));
  if (p.oom_score_adj && (*p.oom_score_adj < -1000 || *p.oom_score_adj > 1000))
    return invalid(file, "process.oomScoreAdj",
                   "must be between -1000 and 1000, got " + std::to_string(*p.oom_score_adj));
  if (p.scheduler) ENVRUN_CHECK(validate_scheduler(*p.scheduler, file));
  if (p.io_priority) ENVRUN_CHECK(validate_io_priority(*p.io_priority, file));
  return ok();
}

}  // namespace envrun::bundle::detail
