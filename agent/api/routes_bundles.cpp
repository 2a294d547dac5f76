// /v1/bundles: the agent's bundle library (agent/library.hpp): list, add (from a directory
// or a registry), inspect, change one file (a new version), publish a version, remove.
#include <yaml-cpp/yaml.h>

#include <array>

#include "agent/api/api.hpp"
#include "billing/bundle_billing.hpp"
#include "ha/crypto.hpp"
#include "ha/subprocess.hpp"
#include "kernel/fs.hpp"

namespace envrun::agent::api {

namespace {

json version_json(const BundleVersion& v) {
  return {{"version", v.version}, {"created", v.created}, {"source", v.source}};
}

// A YAML document as JSON: maps, sequences, and scalars as integers, numbers, booleans
// or strings (whichever the text is).
json yaml_to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    json o = json::object();
    for (const auto& kv : n) o[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    json a = json::array();
    for (const auto& e : n) a.push_back(yaml_to_json(e));
    return a;
  }
  if (!n.IsScalar()) return nullptr;
  const std::string& s = n.Scalar();
  if (n.Tag() != "!") {  // not quoted
    if (s == "true" || s == "false") return s == "true";
    char* end = nullptr;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end && *end == '\0') return i;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0') return d;
  }
  return s;
}

std::string config_file_of(const std::string& dir) {
  return fs::exists(dir + "/config.json") ? "config.json" : "config.yaml";
}

Result<json> summary(const Library& lib, const std::string& name) {
  auto all = ENVRUN_TRY(lib.versions(name));
  auto cur = ENVRUN_TRY(lib.current(name));
  json vs = json::array();
  for (const auto& v : all) vs.push_back(version_json(v));
  json labels = json::object();
  if (auto b = billing::read_bundle_billing(cur.dir))
    for (const auto& [k, v] : b->labels) labels[k] = v;
  return json{{"name", name}, {"version", cur.version}, {"versions", vs}, {"labels", labels},
              {"created", all.empty() ? cur.created : all.front().created}};
}

Result<json> detail(const Library& lib, const std::string& name) {
  auto j = ENVRUN_TRY(summary(lib, name));
  auto cur = ENVRUN_TRY(lib.current(name));
  std::string file = config_file_of(cur.dir);
  j["config_file"] = file;
  j["config"] = fs::read_file(cur.dir + "/" + file).value_or("");
  j["intercept"] = fs::read_file(cur.dir + "/intercept.yaml").value_or("");
  j["limits"] = json::object();
  try {
    json cfg = yaml_to_json(YAML::Load(j["config"].get<std::string>()));  // JSON is YAML too
    if (cfg.contains("linux") && cfg["linux"].contains("resources")) j["limits"] = cfg["linux"]["resources"];
  } catch (const std::exception&) {
  }
  return j;
}

// The text of `file` after the change a PUT asks for.
Result<std::pair<std::string, std::string>> changed_file(const Library& lib, const std::string& name,
                                                         const std::string& what, const json& body) {
  auto cur = ENVRUN_TRY(lib.current(name));
  try {
    if (what == "config") {
      if (body.contains("config") && body["config"].is_object()) return std::pair{std::string("config.json"), body["config"].dump(2)};
      auto text = ENVRUN_TRY(string_field(body, "text", true));
      auto file = ENVRUN_TRY(string_field(body, "file", false));
      if (file.empty()) file = config_file_of(cur.dir);
      if (file != "config.json" && file != "config.yaml")
        return Error::make(ErrorKind::Usage, "body: field \"file\": want config.json or config.yaml");
      return std::pair{file, text};
    }
    if (what == "intercept") return std::pair{std::string("intercept.yaml"), ENVRUN_TRY(string_field(body, "text", true))};
    if (what == "labels") {
      auto it = body.find("labels");
      if (it == body.end() || !it->is_object()) return Error::make(ErrorKind::Usage, "body: field \"labels\": want an object of strings");
      YAML::Node doc = fs::exists(cur.dir + "/envrun.yaml") ? YAML::LoadFile(cur.dir + "/envrun.yaml") : YAML::Node();
      YAML::Node labels(YAML::NodeType::Map);
      for (auto& [k, v] : it->items()) {
        if (!v.is_string()) return Error::make(ErrorKind::Usage, "body: field \"labels." + k + "\": want a string");
        labels[k] = v.get<std::string>();
      }
      doc["billing"]["labels"] = labels;
      YAML::Emitter e;
      e << doc;
      return std::pair{std::string("envrun.yaml"), std::string(e.c_str()) + "\n"};
    }
    // limits: the config's linux.resources
    auto it = body.find("resources");
    if (it == body.end() || !it->is_object()) return Error::make(ErrorKind::Usage, "body: field \"resources\": want an object (OCI linux.resources)");
    std::string file = config_file_of(cur.dir);
    auto text = ENVRUN_TRY(fs::read_file(cur.dir + "/" + file));
    if (file == "config.json") {
      json cfg = json::parse(text, nullptr, false);
      if (cfg.is_discarded()) return Error::make(ErrorKind::Config, name + ": config.json does not parse");
      cfg["linux"]["resources"] = *it;
      return std::pair{file, cfg.dump(2)};
    }
    YAML::Node cfg = YAML::Load(text);
    cfg["linux"]["resources"] = YAML::Load(it->dump());
    YAML::Emitter e;
    e << cfg;
    return std::pair{file, std::string(e.c_str()) + "\n"};
  } catch (const std::exception& e) {
    return Error::make(ErrorKind::Config, name + ": " + e.what());
  }
}

// The source directory of a POST: {dir: PATH} or {pull: REF[, insecure]} pulled into a
// temporary directory (removed by the caller through `tmp`).
Result<std::string> source_dir(ApiContext& ctx, const json& body, std::string& tmp) {
  auto dir = ENVRUN_TRY(string_field(body, "dir", false));
  auto ref = ENVRUN_TRY(string_field(body, "pull", false));
  if (dir.empty() == ref.empty()) return Error::make(ErrorKind::Usage, "body: give one of \"dir\" and \"pull\"");
  if (!dir.empty()) {
    if (dir.front() != '/') return Error::make(ErrorKind::Usage, "body: field \"dir\": want an absolute path");
    return dir;
  }
  if (ref.front() == '-') return Error::make(ErrorKind::Usage, "body: field \"pull\": not an image reference");
  ENVRUN_CHECK(fs::mkdir_p(ctx.opt.dir + "/incoming", 0700));
  std::array<uint8_t, 8> rnd{};
  ENVRUN_CHECK(ha::random_bytes(rnd));
  tmp = ctx.opt.dir + "/incoming/pull-" + ha::to_hex(ha::Bytes(rnd.data(), rnd.size()));
  // The agent's own content store (DIR/store): layers shared by its versions stay in its root.
  std::vector<std::string> argv{ctx.opt.envrun, "pull", "--quiet", "--store", ctx.opt.dir + "/store", "--bundle", tmp, ref};
  if (body.value("insecure", false)) argv.push_back("--insecure");
  auto child = ENVRUN_TRY(ha::Child::spawn({argv, {}}));
  int rc = ENVRUN_TRY(child.wait());
  if (rc != 0) return Error::make(ErrorKind::Generic, "pull " + ref + ": " + child.failure_text(rc));
  return tmp;
}

Reply add_or_publish(ApiContext& ctx, Call& c, const std::string& name, bool add) {
  std::string tmp;
  auto src = source_dir(ctx, c.body_json, tmp);
  if (!src) return error_reply(src.error());
  Result<BundleVersion> v = Error::make(ErrorKind::Generic, "");
  {
    std::lock_guard<std::mutex> g(ctx.library_mu);
    auto& lib = ctx.instances.library();
    v = add ? lib.add(name, *src) : lib.publish(name, *src);
  }
  if (!tmp.empty()) (void)fs::remove_tree(tmp);
  if (!v) return error_reply(v.error());
  auto j = summary(ctx.instances.library(), name);
  if (!j) return error_reply(j.error());
  return json_reply(*j, 201, (add ? "added " : "published ") + name + " version " + std::to_string(v->version));
}

}  // namespace

void add_bundle_routes(Router& r, ApiContext& ctx) {
  auto& lib = ctx.instances.library();
  auto scope_of_name = [](Call& c) -> Result<std::string> {
    ENVRUN_CHECK(Library::validate_name(c.params[0]));
    return c.params[0];
  };
  r.add({"GET", "/v1/bundles", Need::Read, false, nullptr, [&lib](Call& c) {
           auto names = lib.names();
           if (!names) return error_reply(names.error());
           json arr = json::array();
           for (const auto& n : *names)
             if (sees_bundle(c.token.bundles, n))
               if (auto j = summary(lib, n)) arr.push_back(*j);
           return json_reply(arr);
         }});
  r.add({"POST", "/v1/bundles", Need::BundleWrite, true,
         [](Call& c) -> Result<std::string> {
           auto n = ENVRUN_TRY(string_field(c.body_json, "name", true));
           ENVRUN_CHECK(Library::validate_name(n));
           return n;
         },
         [&ctx](Call& c) { return add_or_publish(ctx, c, c.body_json["name"].get<std::string>(), true); }});
  r.add({"GET", "/v1/bundles/{name}", Need::Read, false, scope_of_name, [&lib](Call& c) {
           auto j = detail(lib, c.params[0]);
           return j ? json_reply(*j) : error_reply(j.error());
         }});
  for (std::string what : {"config", "intercept", "labels", "limits"})
    r.add({"PUT", "/v1/bundles/{name}/" + what, Need::BundleWrite, true, scope_of_name, [&ctx, what](Call& c) {
             const auto& name = c.params[0];
             std::lock_guard<std::mutex> g(ctx.library_mu);
             auto& lib = ctx.instances.library();
             auto f = changed_file(lib, name, what, c.body_json);
             if (!f) return error_reply(f.error());
             auto v = lib.change_file(name, f->first, f->second);
             if (!v) return error_reply(v.error());
             auto j = summary(lib, name);
             return j ? json_reply(*j, 200, name + " " + what + " changed: version " + std::to_string(v->version))
                      : error_reply(j.error());
           }});
  r.add({"POST", "/v1/bundles/{name}/versions", Need::BundleWrite, true, scope_of_name,
         [&ctx](Call& c) { return add_or_publish(ctx, c, c.params[0], false); }});
  r.add({"DELETE", "/v1/bundles/{name}", Need::BundleWrite, false, scope_of_name, [&ctx](Call& c) {
           std::lock_guard<std::mutex> g(ctx.library_mu);
           auto v = ctx.instances.library().remove(c.params[0]);
           if (!v) return error_reply(v.error());
           return json_reply({{"name", c.params[0]}, {"deleted", true}}, 200, "deleted bundle " + c.params[0]);
         }});
}

}  // namespace envrun::agent::api
