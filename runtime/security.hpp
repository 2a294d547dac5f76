// Process security settings applied in the container's init (and exec'd processes)
// just before execve: rlimits, oom_score_adj, user/groups, capabilities, no_new_privs,
// seccomp. Each function acts on the calling process; call order is apply_process_security's.
// Implementation: security.cpp (rlimits, oom, sequence), capabilities.cpp, seccomp.cpp.
#pragma once
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bundle/spec.hpp"
#include "kernel/result.hpp"

namespace envrun::runtime {

// setrlimit for each entry. If the hard limit asked for is above the current hard
// limit and we lack CAP_SYS_RESOURCE (EPERM), clamp to the current hard limit and
// append a warning to `warnings` instead of failing (runc fails here). All entries
// are checked (known type, soft <= hard) before any is applied. Null `warnings`:
// the warnings go to the log.
Result<void> apply_rlimits(const std::vector<oci::Rlimit>& rlimits, std::vector<std::string>* warnings);

// "RLIMIT_NOFILE" -> RLIMIT_NOFILE; -1 when unknown.
int rlimit_from_name(const std::string& name);

// Write /proc/self/oom_score_adj. Lowering it below the floor needs CAP_SYS_RESOURCE:
// with `warnings` given, that refusal becomes a warning; without, an error.
Result<void> apply_oom_score_adj(int value, std::vector<std::string>* warnings = nullptr);

// Parse "CAP_SYS_ADMIN" -> number (own table, CAP_CHOWN=0 .. CAP_CHECKPOINT_RESTORE=40,
// independent of the running kernel); -1 when unknown.
int capability_from_name(const std::string& name);
// Number -> "CAP_..." ; "CAP_<n>" when beyond the table.
std::string capability_name(int cap);
// The running kernel's highest capability (/proc/sys/kernel/cap_last_cap).
int last_capability();
// True when `cap` is in the calling thread's effective set.
bool has_effective_capability(int cap);

// Bounding-set drop, setgroups(additionalGids), setresgid, setresuid (keeping caps
// across the uid change), then effective/permitted/inheritable via libcap, then ambient.
// `caps` absent means: drop all capabilities when switching to a non-root uid, keep as is otherwise.
// Capability names are all checked before anything changes. user.umask is applied when set.
Result<void> apply_user_and_capabilities(const oci::User& user,
                                         const std::optional<oci::Capabilities>& caps);

struct SeccompCtxRelease {
  void operator()(void* ctx) const;
};

// A seccomp filter built from the spec (libseccomp) but not yet loaded, so that
// configuration errors surface before the process changes, and so that it can be
// inspected in tests. Errors name the field: "linux.seccomp.syscalls[3]: ...".
// SCMP_ACT_NOTIFY / listenerPath -> "linux.seccomp: SCMP_ACT_NOTIFY is not supported".
// Unknown syscall names are skipped (as runc does) with a debug log line.
class SeccompFilter {
 public:
  static Result<SeccompFilter> build(const oci::Seccomp& seccomp);
  // Install the filter on the calling process (no_new_privs is NOT set by it:
  // without no_new_privs this needs CAP_SYS_ADMIN).
  Result<void> load() const;
  // Size in bytes of the BPF program the filter compiles to (exported to a memfd).
  Result<size_t> bpf_size() const;
  size_t rules_added() const { return rules_added_; }    // seccomp_rule_add calls that succeeded
  size_t names_skipped() const { return names_skipped_; }  // unknown syscall names

 private:
  std::unique_ptr<void, SeccompCtxRelease> ctx_;
  size_t rules_added_ = 0;
  size_t names_skipped_ = 0;
};

// Build and load the seccomp filter (SeccompFilter::build + load).
Result<void> load_seccomp(const oci::Seccomp& seccomp);

// The whole sequence in runc's order: rlimits, oom_score_adj, (seccomp first if
// !noNewPrivileges, while CAP_SYS_ADMIN is still held), user+caps, no_new_privs,
// (seccomp last if noNewPrivileges). The seccomp filter is built before any change.
Result<void> apply_process_security(const oci::Process& proc, const std::optional<oci::Seccomp>& seccomp,
                                    std::vector<std::string>* warnings);

}  // namespace envrun::runtime
