// Process security settings applied in the container's init (and exec'd processes)
// just before execve: rlimits, user/groups, capabilities, no_new_privs, seccomp.
// Each function acts on the calling process; call order is apply_process_security's.
#pragma once
#include <string>
#include <vector>

#include "bundle/spec.hpp"
#include "kernel/result.hpp"

namespace envrun::runtime {

// setrlimit for each entry. If the hard limit asked for is above the current hard
// limit and we lack CAP_SYS_RESOURCE (EPERM), clamp to the current hard limit and
// append a warning to `warnings` instead of failing (runc fails here).
Result<void> apply_rlimits(const std::vector<oci::Rlimit>& rlimits, std::vector<std::string>* warnings);

// Parse "CAP_SYS_ADMIN" -> number; -1 when unknown.
int capability_from_name(const std::string& name);

// Bounding-set drop, setgroups(additionalGids), setresgid, setresuid (keeping caps
// across the uid change), then effective/permitted/inheritable via libcap, then ambient.
// `caps` absent means: drop all capabilities when switching to a non-root uid, keep as is otherwise.
Result<void> apply_user_and_capabilities(const oci::User& user,
                                         const std::optional<oci::Capabilities>& caps);

// Build and load the seccomp filter (libseccomp). SCMP_ACT_NOTIFY / listenerPath -> clear
// error "seccomp notify is not supported". Unknown syscall names are skipped (as runc does).
Result<void> load_seccomp(const oci::Seccomp& seccomp);

// The whole sequence in runc's order: rlimits, (seccomp first if !noNewPrivileges),
// user+caps, no_new_privs, (seccomp last if noNewPrivileges).
Result<void> apply_process_security(const oci::Process& proc, const std::optional<oci::Seccomp>& seccomp,
                                    std::vector<std::string>* warnings);

}  // namespace envrun::runtime
