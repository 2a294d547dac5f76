// `envrun push BUNDLE REF`: the bundle as an OCI image manifest that any runtime can use
//   config: application/vnd.oci.image.config.v1+json, made from config.json (process.args
//           -> Cmd, env -> Env, cwd -> WorkingDir, user -> "uid:gid", the host's os/arch,
//           rootfs.diff_ids)
//   layers: [0] the rootfs, application/vnd.oci.image.layer.v1.tar+gzip (the only layer)
//   annotations: the bundle's own files, as text, in the manifest itself:
//           io.envrun.bundle.config.json      config.json
//           io.envrun.bundle.intercept.yaml   intercept.yaml (when present)
//   so that podman, containerd or skopeo+umoci see a plain image (annotations are ignored
//   by them), the files are covered by the manifest digest, and no registry garbage-collects
//   them as unreferenced blobs. Their size is bounded (kMaxBundleFiles) because registries
//   limit manifests to a few MiB.
// `envrun pull` writes them back into the bundle.
// Uploads: HEAD first (present blobs are skipped), POST then one PUT ?digest= each,
// then PUT of the manifest; the token is asked for with the "pull,push" scope.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bundle/registry_client.hpp"
#include "bundle/registry_manifest.hpp"
#include "bundle/registry_store.hpp"
#include "kernel/result.hpp"

namespace envrun::registry {

inline constexpr const char* kConfigAnnotation = "io.envrun.bundle.config.json";
inline constexpr const char* kInterceptAnnotation = "io.envrun.bundle.intercept.yaml";
inline constexpr size_t kMaxBundleFiles = 1u << 20;  // config.json + intercept.yaml, bytes

struct PushOptions {
  std::string bundle;
  std::string reference;
  std::string store;     // the packed layer is kept there (default: default_data_root())
  std::string authfile;  // default: auth_file()
  bool insecure = false;
  // Progress: called with one line per step (packing, each blob uploaded or skipped, the
  // manifest); envrun-pull prints them on a terminal.
  std::function<void(const std::string&)> step;
};

struct PushReport {
  std::string manifest_digest;
  int uploaded = 0;  // blobs sent
  int skipped = 0;   // blobs the registry had
  uint64_t bytes = 0;
};

Result<PushReport> push_bundle(const PushOptions& opts);

// The push side: the annotations carrying config.json (its text) and BUNDLE/intercept.yaml
// when present. ErrorKind::Config when they exceed kMaxBundleFiles.
Result<std::map<std::string, std::string>> bundle_file_annotations(const std::string& bundle, const std::string& config_text);
// The pull side: write config.json / intercept.yaml from the manifest's annotations into
// bundle_dir (config.json only when the image carries one; pull made one from the image
// config before). Returns how many files were written.
Result<int> restore_bundle_files(const ImageManifest& m, const std::string& bundle_dir);

}  // namespace envrun::registry
