// The bundle's own files in an image: split from the layers and restored on pull
// (small: fetched into memory with one GET each, size and digest checked).
#include <algorithm>

#include "bundle/registry_digest.hpp"
#include "bundle/registry_push.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"

namespace envrun::registry {

std::vector<Descriptor> split_bundle_blobs(ImageManifest& m) {
  std::vector<Descriptor> files, layers;
  for (auto& d : m.layers)
    (d.media_type == kEnvrunConfigType || d.media_type == kEnvrunInterceptType ? files : layers).push_back(d);
  m.layers = std::move(layers);
  return files;
}

Result<void> restore_bundle_files(RegistryClient& client, const std::vector<Descriptor>& blobs, const std::string& dir) {
  for (const auto& d : blobs) {
    std::string name = d.media_type == kEnvrunConfigType ? "config.json" : "intercept.yaml";
    if (d.size > (8 << 20)) return Error::make(ErrorKind::Config, client.where() + ": " + name + " blob " + d.digest + ": larger than 8 MiB");
    auto r = ENVRUN_TRY(client.get("blobs/" + d.digest, {}, size_t(std::max<int64_t>(d.size, 1 << 16))));
    if (r.status != 200) return Error::make(ErrorKind::Generic, client.where() + ": " + name + " blob " + d.digest + ": " + describe_http_error(r));
    std::string text = std::move(r.body);
    if (int64_t(text.size()) != d.size || sha256_digest(text) != d.digest)
      return Error::make(ErrorKind::Generic, client.where() + ": " + name + " blob " + d.digest + ": digest mismatch");
    ENVRUN_CHECK(fs::atomic_write(dir + "/" + name, text, 0644, false));
    log::debug("pull: " + name + " restored from the image (" + d.digest + ")");
  }
  return ok();
}

}  // namespace envrun::registry
