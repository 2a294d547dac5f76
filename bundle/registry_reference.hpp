// Image references: `[host[:port]/]name[:tag][@sha256:<hex>]` as the distribution spec
// and docker understand them. A first component with a '.' or ':' or equal to
// "localhost" names the registry; otherwise the image is on Docker Hub
// (registry-1.docker.io, one-word names under library/). Errors are ErrorKind::Usage.
#pragma once
#include <string>
#include <string_view>

#include "kernel/result.hpp"

namespace envrun::registry {

inline constexpr const char* kDockerHub = "registry-1.docker.io";

struct ImageRef {
  std::string registry;    // "127.0.0.1:5000", "registry-1.docker.io"
  std::string repository;  // "library/busybox", "team/app"
  std::string tag;         // "latest" when neither tag nor digest was given
  std::string digest;      // "sha256:<64 hex>" or empty
  // What the manifest is fetched by: the digest when given, else the tag.
  const std::string& manifest_key() const { return digest.empty() ? tag : digest; }
  // Canonical text: registry/repository[:tag][@digest].
  std::string str() const;
};

Result<ImageRef> parse_reference(std::string_view text);

// "sha256:<64 lowercase hex>": the only digest algorithm envrun accepts.
bool valid_digest(std::string_view d);

}  // namespace envrun::registry
