// Pieces shared by the container_<op>.cpp files. Internal to runtime/.
#pragma once
#include <sys/un.h>

#include <memory>
#include <string>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/state.hpp"

namespace envrun::runtime {

// sockaddr for <dir>/<name> spelled through /proc/self/fd/<dirfd>/<name> (short path).
sockaddr_un unix_addr_in(int dirfd, const std::string& name);

// setns into a pid namespace for our future children; returns an fd of the previous
// one so that restore_pid_namespace_for_children can undo it.
Result<UniqueFd> join_pid_namespace_for_children(const std::string& path);
void restore_pid_namespace_for_children(const UniqueFd& previous);

// A container without a cgroup (cgroup_path empty): its init's session stands in for it.
std::unique_ptr<CgroupManager> session_group(const ContainerState& st);
// The cgroup manager of a recorded container (its session group when it has no cgroup).
Result<std::unique_ptr<CgroupManager>> cgroup_of(const ContainerState& st);

// Load and check the container's status is one of `allowed`; the error names the op.
Result<ContainerState> load_in_status(const StateStore& store, const std::string& id,
                                      std::initializer_list<Status> allowed, const char* op, Status* now = nullptr);

}  // namespace envrun::runtime
