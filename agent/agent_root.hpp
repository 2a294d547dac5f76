// The directory an agent (`envrun serve --root DIR`) owns:
//   DIR/blobs/sha256/<hex>   content store (bundle files, deduplicated)
//   DIR/bundles/<id>         bundles of the containers it received
//   DIR/images/<id>          an image while its restore runs
//   DIR/incoming/<id>.<rnd>  a migration in progress (staged bundle, partial image)
// With an image root (envrun serve --image-dir IDIR, e.g. on a tmpfs), the images and
// their staging are IDIR/images/<id> and IDIR/incoming/<id>.<rnd> instead.
//   DIR/state                the state root of its containers (envrun --root DIR/state list)
// Only a committed migration leaves anything outside incoming/; incoming/ and images/
// are emptied when the agent starts (a killed agent's leftovers).
#pragma once
#include <string>

#include "kernel/result.hpp"

namespace envrun::agent {

struct AgentRoot {
  std::string dir;
  std::string image_root;  // "" = dir
  std::string blobs() const { return dir + "/blobs/sha256"; }
  std::string bundles() const { return dir + "/bundles"; }
  std::string bundle(const std::string& id) const { return bundles() + "/" + id; }
  std::string images() const { return (image_root.empty() ? dir : image_root) + "/images"; }
  std::string image_incoming() const { return (image_root.empty() ? dir : image_root) + "/incoming"; }
  std::string image(const std::string& id) const { return images() + "/" + id; }
  std::string incoming() const { return dir + "/incoming"; }
  std::string state() const { return dir + "/state"; }
  // Creates the directories; empties incoming/ and images/. Returns how many leftovers went.
  Result<int> prepare() const;
};

}  // namespace envrun::agent
