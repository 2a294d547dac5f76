// AgentRoot::prepare.
#include "agent/agent_root.hpp"

#include <vector>

#include "kernel/fs.hpp"

namespace envrun::agent {

Result<int> AgentRoot::prepare() const {
  // The bundles' parents stay traversable (a container with a user namespace opens its rootfs).
  for (const auto& d : {dir, bundles()}) ENVRUN_CHECK(fs::mkdir_p(d, 0711));
  if (!image_root.empty()) ENVRUN_CHECK(fs::mkdir_p(image_root, 0700));
  for (const auto& d : {blobs(), images(), incoming(), image_incoming(), state()}) ENVRUN_CHECK(fs::mkdir_p(d, 0700));
  int swept = 0;
  std::vector<std::string> parents{incoming(), images()};
  if (image_incoming() != incoming()) parents.push_back(image_incoming());
  for (const auto& parent : parents)
    for (const auto& name : fs::list_dir(parent)) {
      ENVRUN_CHECK(fs::remove_tree(parent + "/" + name));
      ++swept;
    }
  return swept;
}

}  // namespace envrun::agent
