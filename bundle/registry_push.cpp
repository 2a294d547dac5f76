// push_bundle: pack, describe, upload (HEAD/POST/PUT), PUT the manifest.
#include "bundle/registry_push.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bundle/registry_digest.hpp"
#include "bundle/registry_push_http.hpp"
#include "bundle/registry_progress.hpp"
#include "bundle/registry_push_layer.hpp"
#include "bundle/spec_parser.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"

namespace envrun::registry {
namespace {

using nlohmann::json;

struct Blob {
  Descriptor desc;
  RequestBody body;
};

Error config_error(const std::string& msg) { return Error::make(ErrorKind::Config, msg); }

// The image config (OCI image-spec) from the bundle's config.json.
Result<json> image_config(const json& spec, const std::string& where, const std::string& diff_id) {
  json cfg = json::object();
  const json proc = spec.value("process", json::object());
  if (!proc.is_object()) return config_error(where + ": process: expected an object");
  if (proc.contains("args")) {
    if (!proc["args"].is_array()) return config_error(where + ": process.args: expected an array of strings");
    cfg["Cmd"] = proc["args"];
  }
  if (proc.contains("env")) cfg["Env"] = proc["env"];
  if (proc.contains("cwd") && proc["cwd"].is_string()) cfg["WorkingDir"] = proc["cwd"];
  if (proc.contains("user") && proc["user"].is_object()) {
    auto u = proc["user"];
    cfg["User"] = std::to_string(u.value("uid", 0u)) + ":" + std::to_string(u.value("gid", 0u));
  }
  Platform p = host_platform();
  json out = {{"architecture", p.architecture}, {"os", p.os}, {"config", cfg},
              {"rootfs", {{"type", "layers"}, {"diff_ids", json::array({diff_id})}}}};
  if (!p.variant.empty()) out["variant"] = p.variant;
  return out;
}

// Pack the rootfs into the store (temp file, renamed to its digest).
Result<Blob> pack_into_store(const std::string& rootfs, const BlobStore& store, std::string& diff_id) {
  std::string tmp = store.root() + "/blobs/sha256/.tmp-push-" + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Error::sys("store " + tmp);
  auto packed = pack_rootfs(rootfs, fd.get());
  if (!packed) {
    ::unlink(tmp.c_str());
    return std::move(packed).error().with_context("bundle rootfs " + rootfs);
  }
  std::string dest = store.blob_path(packed->digest);
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error::sys("store " + dest);
  }
  diff_id = packed->diff_id;
  log::debug("push: rootfs packed: " + std::to_string(packed->entries) + " entries, " + std::to_string(packed->size) +
             " bytes, " + packed->digest);
  Blob b{{"application/vnd.oci.image.layer.v1.tar+gzip", packed->digest, packed->size}, {}};
  b.body.fd = fd.release();  // closed by push_bundle
  b.body.size = packed->size;
  return b;
}

Blob memory_blob(const std::string& media_type, std::string data) {
  Blob b{{media_type, sha256_digest(data), int64_t(data.size())}, {}};
  b.body.data = std::move(data);
  return b;
}

std::string escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), int(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

// HEAD, then POST + PUT ?digest= unless the registry has it. Returns true when uploaded.
Result<bool> upload_blob(RegistryClient& c, const Blob& b) {
  const auto& d = b.desc;
  auto head = ENVRUN_TRY(send_request(c, "HEAD", c.url("blobs/" + d.digest), {}));
  if (head.status == 200) {
    log::debug("push: blob " + d.digest + " already in the registry");
    return false;
  }
  auto post = ENVRUN_TRY(send_request(c, "POST", c.url("blobs/uploads/"), {"Content-Type: application/octet-stream"}));
  std::string loc = post.header("location");
  if (post.status != 202 || loc.empty())
    return Error::make(ErrorKind::Generic, c.where() + ": starting the upload of " + d.digest + ": " + describe_http_error(post));
  if (loc[0] == '/') loc = c.base_url() + loc;
  loc += (loc.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + escape(d.digest);
  log::debug("push: uploading blob " + d.digest + " (" + std::to_string(d.size) + " bytes)");
  auto put = ENVRUN_TRY(send_request(c, "PUT", loc, {"Content-Type: application/octet-stream"}, b.body));
  if (put.status != 201)
    return Error::make(ErrorKind::Generic, c.where() + ": upload of " + d.digest + ": " + describe_http_error(put));
  return true;
}

json descriptor_json(const Blob& b) {
  return {{"mediaType", b.desc.media_type}, {"digest", b.desc.digest}, {"size", b.desc.size}};
}

}  // namespace

Result<PushReport> push_bundle(const PushOptions& o) {
  auto ref = ENVRUN_TRY(parse_reference(o.reference));
  if (!ref.digest.empty()) return Error::make(ErrorKind::Usage, "push: give a tag, not a digest (" + o.reference + ")");
  // config.json, else config.yaml / config.yml (converted: the image carries config.json).
  std::string cfg_path;
  for (const char* name : {"config.json", "config.yaml", "config.yml"})
    if (cfg_path.empty() && fs::exists(o.bundle + "/" + name)) cfg_path = o.bundle + "/" + name;
  if (cfg_path.empty())
    return Error::make(ErrorKind::NotFound, "bundle " + o.bundle + ": no config.json or config.yaml (a bundle directory holds one of them and rootfs/)");
  ENVRUN_CHECK(bundle::load_spec(o.bundle));  // refuse an invalid bundle before anything is sent
  auto raw = fs::read_file(cfg_path);
  if (!raw) return std::move(raw).error().with_context("bundle " + o.bundle);
  json spec;
  if (cfg_path.ends_with(".json")) spec = json::parse(*raw, nullptr, false);
  else spec = ENVRUN_TRY(bundle::yaml_to_json(*raw, cfg_path));
  if (!spec.is_object()) return config_error(cfg_path + ": not a JSON object");
  auto cfg_text = std::make_optional(cfg_path.ends_with(".json") ? *raw : spec.dump(4) + "\n");
  std::string root = spec.contains("root") && spec["root"].is_object() ? spec["root"].value("path", "rootfs") : "rootfs";
  std::string rootfs = root.starts_with("/") ? root : o.bundle + "/" + root;
  if (!fs::is_dir(rootfs)) return config_error(cfg_path + ": root.path: " + rootfs + " is not a directory");

  BlobStore store(o.store.empty() ? default_data_root() : o.store);
  ENVRUN_CHECK(store.init());
  RegistryClient client(ref, o.insecure);
  client.set_actions("pull,push");
  if (!o.authfile.empty()) client.set_auth_file(o.authfile);
  ENVRUN_CHECK(client.connect());

  auto annotations = ENVRUN_TRY(bundle_file_annotations(o.bundle, *cfg_text));
  auto step = [&o](const std::string& line) {
    if (o.step) o.step(line);
  };
  std::string diff_id;
  step("packing " + rootfs);
  auto t0 = std::chrono::steady_clock::now();
  Blob layer = ENVRUN_TRY(pack_into_store(rootfs, store, diff_id));
  char packed[160];
  std::snprintf(packed, sizeof packed, "packed %s: %s gzip in %.1f s", layer.desc.digest.substr(0, 19).c_str(),
                human_bytes(double(layer.desc.size)).c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  step(packed);
  UniqueFd layer_fd(layer.body.fd);
  json icfg = ENVRUN_TRY(image_config(spec, cfg_path, diff_id));
  std::vector<Blob> blobs{memory_blob("application/vnd.oci.image.config.v1+json", icfg.dump()), std::move(layer)};

  PushReport rep;
  for (const auto& b : blobs) {
    step("uploading " + b.desc.digest.substr(0, 19) + " (" + human_bytes(double(b.desc.size)) + ")");
    bool sent = ENVRUN_TRY(upload_blob(client, b));
    if (!sent) step(b.desc.digest.substr(0, 19) + " already in the registry");
    (sent ? rep.uploaded : rep.skipped)++;
    if (sent) rep.bytes += uint64_t(b.desc.size);
  }
  json m = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"config", descriptor_json(blobs[0])}, {"layers", json::array({descriptor_json(blobs[1])})},
            {"annotations", annotations}};
  RequestBody mb{m.dump()};
  step("writing the manifest " + ref.tag);
  rep.manifest_digest = sha256_digest(mb.data);
  auto put = ENVRUN_TRY(send_request(client, "PUT", client.url("manifests/" + ref.tag),
                                     {"Content-Type: application/vnd.oci.image.manifest.v1+json"}, mb));
  if (put.status != 201)
    return Error::make(ErrorKind::Generic, client.where() + ": manifest " + ref.tag + ": " + describe_http_error(put));
  return rep;
}

}  // namespace envrun::registry
