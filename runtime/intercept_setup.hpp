// Launching a bundle with the interception library (envrun.isolation: intercept | both):
// compile its intercept.yaml into the instance's state, make the control page, work out
// the process's environment, the library's visibility, and (intercept mode, where the
// process runs in the host's root) the real executable and working directory.
#pragma once
#include <string>
#include <vector>

#include "bundle/spec.hpp"
#include "kernel/result.hpp"

namespace envrun::runtime {

inline constexpr const char* kInterceptDirName = "intercept";   // <state>/intercept/
inline constexpr const char* kInterceptMountPoint = "/.envrun";  // where `both` mode sees it

struct InterceptPlan {
  std::vector<std::string> env;    // the process environment: env rules applied + preload variables
  std::vector<oci::Mount> mounts;  // `both`: the instance's intercept dir at /.envrun
  std::string exe;                 // `intercept`: real path of process.args[0]
  std::string cwd;                 // `intercept`: real directory of process.cwd
};

// isolation is "intercept" or "both"; state_dir exists. Writes <state_dir>/intercept/.
// Errors: Config (intercept.yaml, static/setuid entry point), Exec (no such executable),
// System (library missing).
Result<InterceptPlan> plan_interception(const oci::Spec& spec, const std::string& bundle,
                                        const std::string& rootfs, const std::string& id,
                                        const std::string& state_dir);

// For `exec` into such a container: the same for another process (the instance's DB
// already compiled).
Result<InterceptPlan> plan_exec_interception(const oci::Spec& spec, const oci::Process& proc,
                                             const std::string& rootfs, const std::string& state_dir);

// ELF facts that decide whether LD_PRELOAD can work (the script's interpreter for #!).
struct ExecProbe {
  bool is_static = false;  // ELF without PT_INTERP
  bool setid = false;      // setuid or setgid bit
  std::string checked;     // the file the verdict is about (the interpreter of a script)
};
Result<ExecProbe> probe_executable(const std::string& path, const std::string& root = "");

}  // namespace envrun::runtime
