// Image manifests: fetched with the Accept list of OCI and Docker v2 manifests and
// indexes; an index (manifest list) is resolved to the entry of the wanted platform.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/registry_client.hpp"
#include "kernel/result.hpp"

namespace envrun::registry {

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = -1;
};

struct Platform {
  std::string os = "linux";
  std::string architecture;  // GOARCH names: amd64, arm64, arm, 386, ppc64le, s390x, riscv64
  std::string variant;       // v7, v8, ... (empty: any)
  std::string str() const { return os + "/" + architecture + (variant.empty() ? "" : "/" + variant); }
};

struct ImageManifest {
  std::string digest;  // of the image manifest itself
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;  // the manifest's own (string values only)
};

// "linux/amd64", "linux/arm/v7" (ErrorKind::Usage on anything else).
Result<Platform> parse_platform(const std::string& text);
// The platform this envrun runs on (uname machine mapped to GOARCH names).
Platform host_platform();

// Parse a descriptor object; `what` names it in messages ("manifest layers[2]").
Result<Descriptor> parse_descriptor(const nlohmann::json& j, const std::string& what);
// The index entry for `p`; a message listing the platforms present when none fits.
Result<Descriptor> select_platform(const nlohmann::json& index, const Platform& p, const std::string& where);

// Fetch the image's manifest (following one index level) and check its digest.
Result<ImageManifest> fetch_manifest(RegistryClient& client, const Platform& p);

}  // namespace envrun::registry
