// envrun features: what this runtime supports, in the runtime-spec features format.
#include <cstdio>

#include "bundle/capability_names.hpp"
#include "cli/cli.hpp"
#include "runtime/state.hpp"

namespace envrun::cli {

static nlohmann::json features_json() {
  using nlohmann::json;
  json j;
  j["ociVersionMin"] = "1.0.0";
  j["ociVersionMax"] = runtime::kOciVersion;
  j["hooks"] = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"};
  j["mountOptions"] = {"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand",
                       "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime",
                       "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared",
                       "rslave", "runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid",
                       "sync", "unbindable"};
  j["linux"] = {
      {"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}},
      {"capabilities", json::array()},
      {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}, {"rdma", false}}},
      {"seccomp",
       {{"enabled", true},
        {"actions", {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                     "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"}},
        {"operators", {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                       "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
        {"archs", {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}}}},
      {"apparmor", {{"enabled", false}}},
      {"selinux", {{"enabled", false}}},
      {"intelRdt", {{"enabled", false}}},
      {"mountExtensions", {{"idmap", {{"enabled", false}}}}}};
  for (auto c : bundle::kCapabilityNames) j["linux"]["capabilities"].push_back(std::string(c));
  j["annotations"] = {{"org.opencontainers.runc.checkpoint.enabled", "false"},
                      {"io.github.envrun.version", ENVRUN_VERSION}};
  return j;
}

void add_features(CLI::App& app, Globals& g) {
  auto* sub = app.add_subcommand("features", "print the features this runtime supports (JSON)");
  on_run(sub, g, "features", nullptr, []() -> Result<int> {
    std::printf("%s\n", features_json().dump(2).c_str());
    return 0;
  });
}

}  // namespace envrun::cli
