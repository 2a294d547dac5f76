// Internal to bundle/: the pieces of validate_spec (spec_validate*.cpp) and the
// name tables they check against.
#pragma once
#include <string>
#include <string_view>

#include "bundle/spec.hpp"
#include "kernel/result.hpp"

namespace envrun::bundle::detail {

// "<file>: <path>: <reason>" with ErrorKind::Config.
Error invalid(const std::string& file, const std::string& path, const std::string& reason);

bool known_capability(std::string_view name);  // CAP_CHOWN .. CAP_CHECKPOINT_RESTORE
bool known_rlimit(std::string_view name);      // RLIMIT_AS .. RLIMIT_STACK
bool known_namespace(std::string_view type);   // pid network mount ipc uts user cgroup time
bool known_seccomp_action(std::string_view action);
bool known_seccomp_op(std::string_view op);
bool known_seccomp_arch(std::string_view arch);
bool known_seccomp_flag(std::string_view flag);

// process.*; linux.* (and the fields that depend on namespaces); linux.seccomp.
Result<void> validate_process(const oci::Process& p, const std::string& file);
Result<void> validate_linux(const oci::Spec& spec, const std::string& file);
Result<void> validate_seccomp(const oci::Seccomp& s, const std::string& file);

}  // namespace envrun::bundle::detail
