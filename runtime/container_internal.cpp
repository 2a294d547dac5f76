#include "runtime/container_internal.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>

#include <cstring>

namespace envrun::runtime {

sockaddr_un unix_addr_in(int dirfd, const std::string& name) {
  sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::string p = "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
  std::strncpy(addr.sun_path, p.c_str(), sizeof addr.sun_path - 1);
  return addr;
}

Result<UniqueFd> join_pid_namespace_for_children(const std::string& path) {
  UniqueFd prev(::open("/proc/self/ns/pid_for_children", O_RDONLY | O_CLOEXEC));
  if (!prev) return Error::sys("open /proc/self/ns/pid_for_children");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::make(ErrorKind::Config, "linux.namespaces: " + path + ": " + std::strerror(errno));
  if (::setns(fd.get(), CLONE_NEWPID) != 0)
    return Error::make(ErrorKind::System, "linux.namespaces: setns " + path + ": " + std::strerror(errno));
  return prev;
}

void restore_pid_namespace_for_children(const UniqueFd& previous) {
  if (previous) (void)::setns(previous.get(), CLONE_NEWPID);
}

Result<std::unique_ptr<CgroupManager>> cgroup_of(const ContainerState& st) {
  if (st.cgroup_path.empty()) return session_group(st);
  auto mounts = ENVRUN_TRY(CgroupMounts::detect());
  return CgroupManager::make(mounts, st.cgroup_path);
}

Result<ContainerState> load_in_status(const StateStore& store, const std::string& id,
                                      std::initializer_list<Status> allowed, const char* op, Status* now) {
  auto st = ENVRUN_TRY(store.load(id));
  Status s = store.status(st);
  if (now) *now = s;
  for (Status a : allowed)
    if (a == s) return st;
  return Error::make(ErrorKind::State, std::string("cannot ") + op + " container \"" + id + "\": it is " +
                                           status_name(s));
}

}  // namespace envrun::runtime
