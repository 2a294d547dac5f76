// linux.seccomp -> a libseccomp filter: default action, architectures, flags, rules.
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cctype>

#include "kernel/fd.hpp"
#include "kernel/log.hpp"
#include "runtime/security.hpp"

namespace envrun::runtime {
namespace {

constexpr const char* kNotifyUnsupported = "linux.seccomp: SCMP_ACT_NOTIFY is not supported";

Error config(const std::string& field, const std::string& why) {
  return Error::make(ErrorKind::Config, field + ": " + why);
}

Error libseccomp_error(const std::string& what, int rc) { return Error::sys(what, -rc); }

// "SCMP_ACT_ERRNO" + errnoRet -> action value. `field` names the spec entry for errors.
Result<uint32_t> parse_action(const std::string& name, std::optional<uint32_t> errno_ret,
                              const std::string& field) {
  if (name == "SCMP_ACT_NOTIFY") return Error::make(ErrorKind::Config, kNotifyUnsupported);
  bool takes_errno = name == "SCMP_ACT_ERRNO" || name == "SCMP_ACT_TRACE";
  if (errno_ret && !takes_errno)
    return config(field, "errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not " + name);
  if (errno_ret && *errno_ret > 0xffff)
    return config(field, "errnoRet " + std::to_string(*errno_ret) + " is out of range");
  uint32_t data = errno_ret.value_or(EPERM);
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(data);
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(data);
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (name.empty()) return config(field, "missing action");
  return config(field, "unknown action \"" + name + "\"");
}

// "SCMP_ARCH_X86_64" -> libseccomp token via its own name table ("x86_64"); 0 if unknown.
uint32_t parse_arch(const std::string& name) {
  const std::string prefix = "SCMP_ARCH_";
  if (name.rfind(prefix, 0) != 0) return 0;
  std::string lower;
  for (char c : name.substr(prefix.size())) lower += char(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "native") return seccomp_arch_native();
  return seccomp_arch_resolve_name(lower.c_str());
}

Result<scmp_compare> parse_op(const std::string& op, const std::string& field) {
  static const std::pair<const char*, scmp_compare> table[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  for (const auto& [n, v] : table)
    if (op == n) return v;
  return config(field, "unknown operator \"" + op + "\"");
}

Result<std::vector<scmp_arg_cmp>> parse_args(const std::vector<oci::SeccompArg>& args,
                                             const std::string& field) {
  std::vector<scmp_arg_cmp> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    std::string f = field + ".args[" + std::to_string(i) + "]";
    if (a.index > 5) return config(f, "index " + std::to_string(a.index) + " is above 5");
    scmp_compare op = ENVRUN_TRY(parse_op(a.op, f));
    // For MASKED_EQ, value is the mask and valueTwo the expected result (as runc/libseccomp-golang).
    out.push_back(scmp_arg_cmp{a.index, op, a.value, a.value_two});
  }
  return out;
}

// libseccomp refuses two comparisons on the same argument in one rule: then each
// comparison becomes a rule of its own (as runc does).
bool repeats_an_index(const std::vector<scmp_arg_cmp>& cmps) {
  unsigned seen = 0;
  for (const auto& c : cmps) {
    if (seen & (1U << c.arg)) return true;
    seen |= 1U << c.arg;
  }
  return false;
}

Result<void> set_attr(scmp_filter_ctx ctx, scmp_filter_attr attr, uint32_t value, const std::string& what) {
  int rc = seccomp_attr_set(ctx, attr, value);
  if (rc < 0) return libseccomp_error("linux.seccomp: " + what, rc);
  return ok();
}

Result<void> add_architectures(scmp_filter_ctx ctx, const std::vector<std::string>& archs) {
  for (size_t i = 0; i < archs.size(); ++i) {
    std::string field = "linux.seccomp.architectures[" + std::to_string(i) + "]";
    uint32_t token = parse_arch(archs[i]);
    if (token == 0) return config(field, "unknown architecture \"" + archs[i] + "\"");
    int rc = seccomp_arch_add(ctx, token);
    if (rc < 0 && rc != -EEXIST) return libseccomp_error(field + ": adding " + archs[i], rc);
  }
  return ok();
}

Result<void> set_flags(scmp_filter_ctx ctx, const std::vector<std::string>& flags) {
  for (size_t i = 0; i < flags.size(); ++i) {
    std::string field = "linux.seccomp.flags[" + std::to_string(i) + "]";
    const std::string& f = flags[i];
    if (f == "SECCOMP_FILTER_FLAG_LOG") {
      ENVRUN_CHECK(set_attr(ctx, SCMP_FLTATR_CTL_LOG, 1, f));
    } else if (f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") {
      ENVRUN_CHECK(set_attr(ctx, SCMP_FLTATR_CTL_SSB, 1, f));
    } else if (f == "SECCOMP_FILTER_FLAG_TSYNC") {
      ENVRUN_CHECK(set_attr(ctx, SCMP_FLTATR_CTL_TSYNC, 1, f));
    } else {
      return config(field, "unsupported flag \"" + f + "\"");
    }
  }
  return ok();
}

}  // namespace

void SeccompCtxRelease::operator()(void* ctx) const {
  if (ctx) seccomp_release(ctx);
}

// Rules for one linux.seccomp.syscalls[i] entry; returns how many rules were added.
static Result<size_t> add_entry(scmp_filter_ctx ctx, const oci::SeccompSyscall& sc, uint32_t default_action,
                                const std::string& field, size_t* skipped) {
  uint32_t action = ENVRUN_TRY(parse_action(sc.action, sc.errno_ret, field));
  auto cmps = ENVRUN_TRY(parse_args(sc.args, field));
  if (action == default_action) {  // libseccomp rejects these; they change nothing
    log::debug(field + ": action equals the default action, skipped");
    return size_t{0};
  }
  size_t added = 0;
  for (const auto& name : sc.names) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      log::debug(field + ": unknown syscall \"" + name + "\" skipped");
      ++*skipped;
      continue;
    }
    std::vector<std::vector<scmp_arg_cmp>> rules;
    if (repeats_an_index(cmps)) {
      for (const auto& c : cmps) rules.push_back({c});
    } else {
      rules.push_back(cmps);
    }
    for (const auto& r : rules) {
      int rc = seccomp_rule_add_array(ctx, action, nr, unsigned(r.size()), r.empty() ? nullptr : r.data());
      if (rc < 0) return libseccomp_error(field + ": adding a rule for \"" + name + "\"", rc);
      ++added;
    }
  }
  return added;
}

Result<SeccompFilter> SeccompFilter::build(const oci::Seccomp& spec) {
  if (!spec.listener_path.empty()) return Error::make(ErrorKind::Config, kNotifyUnsupported);
  uint32_t def = ENVRUN_TRY(parse_action(spec.default_action, spec.default_errno_ret,
                                         "linux.seccomp.defaultAction"));
  SeccompFilter f;
  f.ctx_.reset(seccomp_init(def));
  if (!f.ctx_) return Error::make(ErrorKind::System, "linux.seccomp: seccomp_init failed");
  scmp_filter_ctx ctx = f.ctx_.get();
  // Loading must not set no_new_privs by itself: that is process.noNewPrivileges' decision.
  ENVRUN_CHECK(set_attr(ctx, SCMP_FLTATR_CTL_NNP, 0, "clearing the no_new_privs attribute"));
  ENVRUN_CHECK(add_architectures(ctx, spec.architectures));
  ENVRUN_CHECK(set_flags(ctx, spec.flags));
  for (size_t i = 0; i < spec.syscalls.size(); ++i) {
    std::string field = "linux.seccomp.syscalls[" + std::to_string(i) + "]";
    f.rules_added_ += ENVRUN_TRY(add_entry(ctx, spec.syscalls[i], def, field, &f.names_skipped_));
  }
  return f;
}

Result<void> SeccompFilter::load() const {
  int rc = seccomp_load(ctx_.get());
  if (rc < 0) return libseccomp_error("linux.seccomp: loading the filter", rc);
  return ok();
}

Result<size_t> SeccompFilter::bpf_size() const {
  UniqueFd fd(::memfd_create("envrun-seccomp-bpf", MFD_CLOEXEC));
  if (!fd) return Error::sys("memfd_create");
  int rc = seccomp_export_bpf(ctx_.get(), fd.get());
  if (rc < 0) return libseccomp_error("linux.seccomp: exporting BPF", rc);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::sys("fstat(memfd)");
  return size_t(st.st_size);
}

Result<void> load_seccomp(const oci::Seccomp& seccomp) {
  auto f = SeccompFilter::build(seccomp);
  if (!f) return std::move(f).error();
  return f->load();
}

}  // namespace envrun::runtime
