// The names the runtime-spec fields may take: capabilities, rlimits, namespace types,
// and libseccomp's actions, comparison operators, architectures and filter flags.
#include <algorithm>
#include <array>

#include "bundle/capability_names.hpp"
#include "bundle/spec_validate.hpp"

namespace envrun::bundle::detail {

namespace {

constexpr std::string_view kRlimits[] = {
    "RLIMIT_AS",     "RLIMIT_CORE",   "RLIMIT_CPU",    "RLIMIT_DATA",       "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",  "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",  "RLIMIT_RSS",    "RLIMIT_RTPRIO", "RLIMIT_RTTIME",     "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
};

constexpr std::string_view kNamespaces[] = {"pid", "network", "mount", "ipc",
                                            "uts", "user",    "cgroup", "time"};

constexpr std::string_view kSeccompActions[] = {
    "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY",
};

constexpr std::string_view kSeccompOps[] = {
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",        "SCMP_CMP_EQ",
    "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
};

constexpr std::string_view kSeccompArchs[] = {
    "SCMP_ARCH_X86",       "SCMP_ARCH_X86_64",      "SCMP_ARCH_X32",     "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",   "SCMP_ARCH_MIPS",        "SCMP_ARCH_MIPS64",  "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",    "SCMP_ARCH_MIPSEL64",    "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",     "SCMP_ARCH_PPC64LE",     "SCMP_ARCH_S390",    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",    "SCMP_ARCH_PARISC64",    "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",      "SCMP_ARCH_SH",          "SCMP_ARCH_SHEB",
};

constexpr std::string_view kSeccompFlags[] = {
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
};

template <class Table>
bool contains(const Table& table, std::string_view name) {
  return std::find(std::begin(table), std::end(table), name) != std::end(table);
}

}  // namespace

bool known_capability(std::string_view name) { return capability_number(name) >= 0; }
bool known_rlimit(std::string_view name) { return contains(kRlimits, name); }
bool known_namespace(std::string_view type) { return contains(kNamespaces, type); }
bool known_seccomp_action(std::string_view action) { return contains(kSeccompActions, action); }
bool known_seccomp_op(std::string_view op) { return contains(kSeccompOps, op); }
bool known_seccomp_arch(std::string_view arch) { return contains(kSeccompArchs, arch); }
bool known_seccomp_flag(std::string_view flag) { return contains(kSeccompFlags, flag); }

}  // namespace envrun::bundle::detail
