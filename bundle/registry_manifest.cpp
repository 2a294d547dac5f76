// Manifest and index fetching, media types, platform selection.
#include "bundle/registry_manifest.hpp"

#include <sys/utsname.h>

#include "bundle/registry_digest.hpp"
#include "kernel/log.hpp"

namespace envrun::registry {
namespace {

constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

const std::vector<std::string> kAccept = {
    std::string("Accept: ") + kOciIndex + ", " + kDockerList + ", " + kOciManifest + ", " + kDockerManifest};

Error config_error(const std::string& what) { return Error::make(ErrorKind::Generic, what); }

std::string str_field(const nlohmann::json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
}

// GET manifests/<key>; checks status and, when the key is a digest, the content.
Result<HttpResponse> get_manifest(RegistryClient& c, const std::string& key) {
  auto r = ENVRUN_TRY(c.get("manifests/" + key, kAccept));
  std::string name = c.ref().registry + "/" + c.ref().repository;
  if (r.status == 404)
    return Error::make(ErrorKind::NotFound, "image " + name + ":" + key + " not found (" + describe_http_error(r) + ")");
  if (r.status == 401 || r.status == 403)
    return Error::make(ErrorKind::Generic, c.where() + ": unauthorized for " + name + " (" + describe_http_error(r) +
                                               "); credentials are needed");
  if (r.status != 200)
    return Error::make(ErrorKind::Generic, c.where() + ": manifest " + key + ": " + describe_http_error(r));
  if (key.rfind("sha256:", 0) == 0) {
    std::string got = sha256_digest(r.body);
    if (got != key)
      return config_error(c.where() + ": manifest digest mismatch: asked " + key + ", content is " + got);
  }
  return r;
}

}  // namespace

Result<Platform> parse_platform(const std::string& text) {
  Platform p;
  auto s1 = text.find('/');
  if (s1 == std::string::npos || s1 == 0 || s1 + 1 >= text.size())
    return Error::make(ErrorKind::Usage, "--platform \"" + text + "\": expected OS/ARCH[/VARIANT] (e.g. linux/amd64)");
  p.os = text.substr(0, s1);
  auto s2 = text.find('/', s1 + 1);
  p.architecture = text.substr(s1 + 1, s2 == std::string::npos ? std::string::npos : s2 - s1 - 1);
  if (s2 != std::string::npos) p.variant = text.substr(s2 + 1);
  if (p.architecture.empty() || (s2 != std::string::npos && p.variant.empty()))
    return Error::make(ErrorKind::Usage, "--platform \"" + text + "\": expected OS/ARCH[/VARIANT] (e.g. linux/amd64)");
  return p;
}

Platform host_platform() {
  struct utsname u {};
  ::uname(&u);
  std::string m = u.machine;
  Platform p;
  if (m == "x86_64") p.architecture = "amd64";
  else if (m == "aarch64") p.architecture = "arm64";
  else if (m == "i686" || m == "i386") p.architecture = "386";
  else if (m.rfind("armv7", 0) == 0) p.architecture = "arm", p.variant = "v7";
  else if (m.rfind("armv6", 0) == 0) p.architecture = "arm", p.variant = "v6";
  else p.architecture = m;  // ppc64le, s390x, riscv64 are spelled the same
  return p;
}

Result<Descriptor> parse_descriptor(const nlohmann::json& j, const std::string& what) {
  Descriptor d;
  d.media_type = str_field(j, "mediaType");
  d.digest = str_field(j, "digest");
  if (!valid_digest(d.digest))
    return config_error(what + ".digest: expected sha256:<64 hex>, got \"" + d.digest + "\"");
  if (!j.contains("size") || !j["size"].is_number_integer() || j["size"].get<int64_t>() < 0)
    return config_error(what + ".size: expected a non-negative integer");
  d.size = j["size"].get<int64_t>();
  return d;
}

Result<Descriptor> select_platform(const nlohmann::json& index, const Platform& want, const std::string& where) {
  if (!index.contains("manifests") || !index["manifests"].is_array())
    return config_error(where + ": index has no manifests array");
  std::string seen;
  const auto& ms = index["manifests"];
  for (size_t i = 0; i < ms.size(); ++i) {
    const auto& pl = ms[i].contains("platform") ? ms[i]["platform"] : nlohmann::json::object();
    std::string os = str_field(pl, "os"), arch = str_field(pl, "architecture"), var = str_field(pl, "variant");
    if (os == "unknown" || arch == "unknown") continue;  // attestation manifests
    seen += (seen.empty() ? "" : ", ") + os + "/" + arch + (var.empty() ? "" : "/" + var);
    if (os != want.os || arch != want.architecture) continue;
    if (!want.variant.empty() && !var.empty() && var != want.variant) continue;
    return parse_descriptor(ms[i], where + ": manifests[" + std::to_string(i) + "]");
  }
  return Error::make(ErrorKind::NotFound, where + ": no image for platform " + want.str() +
                                              " (the index has: " + (seen.empty() ? "none" : seen) + ")");
}

Result<ImageManifest> fetch_manifest(RegistryClient& c, const Platform& p) {
  std::string key = c.ref().manifest_key();
  auto r = ENVRUN_TRY(get_manifest(c, key));
  for (int depth = 0;; ++depth) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    std::string where = c.where() + ": manifest " + key;
    if (!j.is_object()) return config_error(where + ": not a JSON object");
    std::string mt = str_field(j, "mediaType");
    if (mt.empty()) mt = r.header("content-type");
    bool is_index = mt.find(kOciIndex) == 0 || mt.find(kDockerList) == 0 || (mt.empty() && j.contains("manifests"));
    if (is_index) {
      if (depth > 0) return config_error(where + ": an index inside an index is not supported");
      auto d = ENVRUN_TRY(select_platform(j, p, where));
      log::debug("pull: index " + key + " -> " + d.digest + " for " + p.str());
      key = d.digest;
      r = ENVRUN_TRY(get_manifest(c, key));
      continue;
    }
    if (!j.contains("config") || !j.contains("layers") || !j["layers"].is_array())
      return config_error(where + ": unsupported manifest (media type \"" + mt + "\"; schema 1 manifests are not supported)");
    ImageManifest m;
    m.digest = sha256_digest(r.body);
    m.config = ENVRUN_TRY(parse_descriptor(j["config"], where + ": config"));
    for (size_t i = 0; i < j["layers"].size(); ++i)
      m.layers.push_back(ENVRUN_TRY(parse_descriptor(j["layers"][i], where + ": layers[" + std::to_string(i) + "]")));
    if (j.contains("annotations") && j["annotations"].is_object())
      for (const auto& [k, v] : j["annotations"].items())
        if (v.is_string()) m.annotations[k] = v.get<std::string>();
    return m;
  }
}

}  // namespace envrun::registry
