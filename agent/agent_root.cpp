// AgentRoot::prepare.
#include "agent/agent_root.hpp"

#include "kernel/fs.hpp"

namespace envrun::agent {

Result<int> AgentRoot::prepare() const {
  // The bundles' parents stay traversable (a container with a user namespace opens its rootfs).
  for (const auto& d : {dir, bundles()}) ENVRUN_CHECK(fs::mkdir_p(d, 0711));
  for (const auto& d : {blobs(), images(), incoming(), state()}) ENVRUN_CHECK(fs::mkdir_p(d, 0700));
  int swept = 0;
  for (const auto& parent : {incoming(), images()})
    for (const auto& name : fs::list_dir(parent)) {
      ENVRUN_CHECK(fs::remove_tree(parent + "/" + name));
      ++swept;
    }
  return swept;
}

}  // namespace envrun::agent
