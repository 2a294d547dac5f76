// SessionGroup: the "cgroup" of a container created without one (isolation intercept run
// by an ordinary user). Its processes are those of the init's session (the init calls
// setsid, so the session id is the init's pid); limits, freezing and statistics need a
// real cgroup and say so.
#include <dirent.h>

#include <cstdlib>
#include <cstring>

#include "kernel/fs.hpp"
#include "runtime/container_internal.hpp"

namespace envrun::runtime {
namespace {

class SessionGroup final : public CgroupManager {
 public:
  SessionGroup(std::string id, pid_t sid) : id_(std::move(id)), sid_(sid) {}
  const std::string& path() const override { return path_; }
  Result<void> create() override { return ok(); }
  Result<void> apply(const oci::Resources&) override { return no_cgroup("resource limits"); }
  Result<void> add_process(pid_t) override { return ok(); }
  Result<std::vector<pid_t>> pids() const override {
    std::vector<pid_t> out;
    if (sid_ <= 0) return out;
    for (auto& name : fs::list_dir("/proc")) {
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      auto stat = fs::read_file("/proc/" + name + "/stat");
      if (!stat) continue;  // exited meanwhile
      // pid (comm) state ppid pgrp session ...: comm may hold spaces and ')'.
      auto close = stat->rfind(')');
      if (close == std::string::npos) continue;
      char state;
      long ppid, pgrp, session;
      if (std::sscanf(stat->c_str() + close + 1, " %c %ld %ld %ld", &state, &ppid, &pgrp, &session) == 4 &&
          session == sid_ && state != 'Z')
        out.push_back(pid_t(std::atol(name.c_str())));
    }
    return out;
  }
  Result<void> freeze() override { return no_cgroup("pause"); }
  Result<void> thaw() override { return no_cgroup("resume"); }
  Result<bool> is_frozen() const override { return false; }
  Result<nlohmann::json> stats() const override { return no_cgroup("statistics"); }
  Result<void> destroy() override { return ok(); }
  std::vector<std::string> dirs() const override { return {}; }

 private:
  Error no_cgroup(const char* what) const {
    return Error::make(ErrorKind::State, std::string(what) + " need a cgroup, and container \"" + id_ +
                                             "\" has none (created without root, isolation intercept)");
  }
  std::string id_, path_;
  pid_t sid_;
};

}  // namespace

std::unique_ptr<CgroupManager> session_group(const ContainerState& st) {
  return std::make_unique<SessionGroup>(st.id, st.pid);
}

}  // namespace envrun::runtime
