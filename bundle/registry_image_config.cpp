// Image config -> OCI runtime spec.
#include "bundle/registry_image_config.hpp"

#include <unistd.h>

#include <sstream>

#include "bundle/spec_parser.hpp"
#include "kernel/fs.hpp"

namespace envrun::registry {
namespace {

Error bad(const std::string& field, const std::string& why) {
  return Error::make(ErrorKind::Config, "image config: " + field + ": " + why);
}

bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

// Field 3 (and 4) of the line of <file> whose first field is `name`.
std::optional<std::pair<uint32_t, uint32_t>> lookup(const std::string& file, const std::string& name) {
  auto text = fs::read_file(file);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ':');) f.push_back(x);
    if (f.size() >= 3 && f[0] == name && all_digits(f[2]))
      return std::pair{uint32_t(std::stoul(f[2])), f.size() >= 4 && all_digits(f[3]) ? uint32_t(std::stoul(f[3])) : 0u};
  }
  return std::nullopt;
}

Result<std::vector<std::string>> string_list(const nlohmann::json& cfg, const char* key) {
  std::vector<std::string> out;
  if (!cfg.contains(key) || cfg[key].is_null()) return out;
  if (!cfg[key].is_array()) return bad(std::string("config.") + key, "expected an array of strings");
  for (const auto& v : cfg[key]) {
    if (!v.is_string()) return bad(std::string("config.") + key, "expected an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

Result<UserIds> resolve_user(const std::string& user, const std::string& rootfs) {
  UserIds ids;
  if (user.empty()) return ids;
  auto colon = user.find(':');
  std::string u = user.substr(0, colon), g = colon == std::string::npos ? "" : user.substr(colon + 1);
  auto pw = lookup(rootfs + "/etc/passwd", u);
  if (all_digits(u)) {
    ids.uid = uint32_t(std::stoul(u));
    // A numeric user's primary group comes from the passwd line with that uid, if any.
    if (auto t = fs::read_file(rootfs + "/etc/passwd")) {
      std::istringstream in(*t);
      for (std::string line; std::getline(in, line);) {
        std::vector<std::string> f;
        std::stringstream ls(line);
        for (std::string x; std::getline(ls, x, ':');) f.push_back(x);
        if (f.size() >= 4 && f[2] == u && all_digits(f[3])) {
          ids.gid = uint32_t(std::stoul(f[3]));
          break;
        }
      }
    }
  } else if (pw) {
    ids.uid = pw->first;
    ids.gid = pw->second;
  } else {
    return bad("config.User", "user \"" + u + "\" is not in the image's /etc/passwd");
  }
  if (!g.empty()) {
    if (all_digits(g)) {
      ids.gid = uint32_t(std::stoul(g));
    } else if (auto gr = lookup(rootfs + "/etc/group", g)) {
      ids.gid = gr->first;
    } else {
      return bad("config.User", "group \"" + g + "\" is not in the image's /etc/group");
    }
  }
  return ids;
}

Result<nlohmann::json> spec_from_image_config(const std::string& text, const std::string& rootfs,
                                              const std::string& image_name) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object()) return bad("(document)", "not a JSON object");
  nlohmann::json cfg = doc.contains("config") && doc["config"].is_object() ? doc["config"] : nlohmann::json::object();
  bool rootless = ::geteuid() != 0;
  nlohmann::json spec = bundle::default_spec_json(rootless, ::getuid(), ::getgid());
  auto& proc = spec["process"];
  proc["terminal"] = false;
  auto args = ENVRUN_TRY(string_list(cfg, "Entrypoint"));
  for (auto& c : ENVRUN_TRY(string_list(cfg, "Cmd"))) args.push_back(c);
  if (!args.empty()) proc["args"] = args;
  std::vector<std::string> env = proc["env"].get<std::vector<std::string>>();
  for (auto& kv : ENVRUN_TRY(string_list(cfg, "Env"))) {
    auto key = kv.substr(0, kv.find('='));
    std::erase_if(env, [&](const std::string& e) { return e.substr(0, e.find('=')) == key; });
    env.push_back(kv);
  }
  proc["env"] = env;
  if (cfg.contains("WorkingDir") && cfg["WorkingDir"].is_string() && !cfg["WorkingDir"].get<std::string>().empty()) {
    std::string wd = cfg["WorkingDir"];
    if (wd.front() != '/') return bad("config.WorkingDir", "\"" + wd + "\" is not absolute");
    proc["cwd"] = wd;
  }
  if (cfg.contains("User") && cfg["User"].is_string() && !cfg["User"].get<std::string>().empty()) {
    auto ids = ENVRUN_TRY(resolve_user(cfg["User"].get<std::string>(), rootfs));
    proc["user"]["uid"] = ids.uid;
    proc["user"]["gid"] = ids.gid;
  }
  nlohmann::json ann = nlohmann::json::object();
  ann["org.opencontainers.image.ref.name"] = image_name;
  if (cfg.contains("ExposedPorts") && cfg["ExposedPorts"].is_object()) {
    std::string ports;
    for (auto& [port, _] : cfg["ExposedPorts"].items()) ports += (ports.empty() ? "" : ",") + port;
    ann["org.opencontainers.image.exposedPorts"] = ports;
  }
  if (cfg.contains("Labels") && cfg["Labels"].is_object())
    for (auto& [k, v] : cfg["Labels"].items())
      if (v.is_string()) ann[k] = v;
  if (cfg.contains("StopSignal") && cfg["StopSignal"].is_string())
    ann["org.opencontainers.image.stopSignal"] = cfg["StopSignal"];
  spec["annotations"] = ann;
  return spec;
}

std::string default_intercept_yaml(const std::string& image_name) {
  return "# Interception database of the bundle pulled from " + image_name +
         ".\n# No rules yet: see envrun-intercept(5) to redirect files, ports and exec.\nversion: 1\n";
}

}  // namespace envrun::registry
