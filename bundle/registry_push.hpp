// `envrun push BUNDLE REF`: the bundle as an OCI image manifest
//   config: application/vnd.oci.image.config.v1+json, made from config.json (process.args
//           -> Cmd, env -> Env, cwd -> WorkingDir, user -> "uid:gid", the host's os/arch,
//           rootfs.diff_ids)
//   layers: [0] the rootfs, application/vnd.oci.image.layer.v1.tar+gzip
//           then the bundle's own files as blobs with envrun media types (and the
//           org.opencontainers.image.title annotation naming the file):
//           application/vnd.envrun.bundle.config.v1+json  (config.json)
//           application/vnd.envrun.intercept.v1+yaml      (intercept.yaml, when present)
// `envrun pull` leaves those out of the rootfs and writes them back into the bundle.
// Uploads: HEAD first (present blobs are skipped), POST then one PUT ?digest= each,
// then PUT of the manifest; the token is asked for with the "pull,push" scope.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "bundle/registry_client.hpp"
#include "bundle/registry_manifest.hpp"
#include "bundle/registry_store.hpp"
#include "kernel/result.hpp"

namespace envrun::registry {

inline constexpr const char* kEnvrunConfigType = "application/vnd.envrun.bundle.config.v1+json";
inline constexpr const char* kEnvrunInterceptType = "application/vnd.envrun.intercept.v1+yaml";

struct PushOptions {
  std::string bundle;
  std::string reference;
  std::string store;     // the packed layer is kept there (default: default_data_root())
  std::string authfile;  // default: auth_file()
  bool insecure = false;
};

struct PushReport {
  std::string manifest_digest;
  int uploaded = 0;  // blobs sent
  int skipped = 0;   // blobs the registry had
  uint64_t bytes = 0;
};

Result<PushReport> push_bundle(const PushOptions& opts);

// The pull side: remove the envrun bundle-file blobs from the manifest's layers and return them.
std::vector<Descriptor> split_bundle_blobs(ImageManifest& m);
// Download them (small: into memory, size and digest checked) and write config.json / intercept.yaml into bundle_dir.
Result<void> restore_bundle_files(RegistryClient& client, const std::vector<Descriptor>& blobs, const std::string& bundle_dir);

}  // namespace envrun::registry
