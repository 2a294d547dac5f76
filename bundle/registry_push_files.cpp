// The bundle's own files in an image: manifest annotations written by push, read back by pull.
#include <nlohmann/json.hpp>

#include "bundle/registry_push.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"

namespace envrun::registry {

Result<std::map<std::string, std::string>> bundle_file_annotations(const std::string& bundle, const std::string& config_text) {
  std::map<std::string, std::string> a{{kConfigAnnotation, config_text}};
  std::string icpt = bundle + "/intercept.yaml";
  if (fs::exists(icpt)) a[kInterceptAnnotation] = ENVRUN_TRY(fs::read_file(icpt));
  size_t total = 0;
  for (const auto& [k, v] : a) total += v.size();
  if (total > kMaxBundleFiles)
    return Error::make(ErrorKind::Config, "bundle " + bundle + ": config.json and intercept.yaml are " + std::to_string(total) +
                                              " bytes; an image carries at most " + std::to_string(kMaxBundleFiles) +
                                              " bytes of them (in its manifest)");
  return a;
}

Result<int> restore_bundle_files(const ImageManifest& m, const std::string& dir) {
  int written = 0;
  for (const auto& [key, name] : {std::pair{kConfigAnnotation, "config.json"}, std::pair{kInterceptAnnotation, "intercept.yaml"}}) {
    auto it = m.annotations.find(key);
    if (it == m.annotations.end()) continue;
    if (std::string(name) == "config.json" && !nlohmann::json::parse(it->second, nullptr, false).is_object())
      return Error::make(ErrorKind::Config, "manifest " + m.digest + ": annotation " + key + ": not a JSON object");
    ENVRUN_CHECK(fs::atomic_write(dir + "/" + name, it->second, 0644, false));
    log::debug(std::string("pull: ") + name + " restored from the image's annotation " + key);
    ++written;
  }
  return written;
}

}  // namespace envrun::registry
