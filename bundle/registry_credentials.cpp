// auth.json reading and writing (docker's format), base64 with OpenSSL.
#include "bundle/registry_credentials.hpp"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "kernel/fs.hpp"
#include "kernel/process.hpp"

namespace envrun::registry {
namespace {

Error file_error(const std::string& file, const std::string& why) {
  return Error::make(ErrorKind::Config, file + ": " + why);
}

// "https://index.docker.io/v1/" -> "index.docker.io"; "host:5000/" -> "host:5000".
std::string key_host(std::string k) {
  if (auto p = k.find("://"); p != std::string::npos) k = k.substr(p + 3);
  if (auto s = k.find('/'); s != std::string::npos) k.resize(s);
  return k;
}

bool same_registry(const std::string& key, const std::string& registry) {
  std::string h = key_host(key);
  if (h == registry) return true;
  bool hub = registry == "registry-1.docker.io" || registry == "docker.io";
  return hub && (h == "index.docker.io" || h == "docker.io" || h == "registry-1.docker.io");
}

// The file's JSON (an empty object when absent).
Result<nlohmann::json> load(const std::string& file) {
  if (!fs::exists(file)) return nlohmann::json::object();
  auto text = fs::read_file(file);
  if (!text) return std::move(text).error().with_context(file);
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return file_error(file, "not a JSON object");
  if (j.contains("auths") && !j["auths"].is_object()) return file_error(file, "auths: expected an object");
  return j;
}

}  // namespace

std::string base64_encode(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), int(in.size()));
  out.resize(size_t(n));
  return out;
}

std::optional<std::string> base64_decode(const std::string& in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out(3 * (in.size() / 4) + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), int(in.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  for (size_t i = in.size(); i > 0 && in[i - 1] == '=' && pad < 2; --i) ++pad;
  out.resize(size_t(n) - pad);
  return out;
}

std::string Credentials::basic_header() const { return "Authorization: Basic " + base64_encode(username + ":" + password); }

std::string default_auth_file() {
  if (::geteuid() == 0) return "/etc/envrun/auth.json";
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg && *xdg == '/') return std::string(xdg) + "/envrun/auth.json";
  return proc::home_dir() + "/.config/envrun/auth.json";
}

std::string auth_file(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  const char* env = std::getenv("REGISTRY_AUTH_FILE");
  if (env && *env) return env;
  return default_auth_file();
}

Result<std::optional<Credentials>> find_credentials(const std::string& file, const std::string& registry) {
  auto j = ENVRUN_TRY(load(file));
  if (!j.contains("auths")) return std::optional<Credentials>{};
  for (auto& [key, entry] : j["auths"].items()) {
    if (!same_registry(key, registry)) continue;
    std::string where = "auths[\"" + key + "\"]";
    if (!entry.is_object() || !entry.contains("auth") || !entry["auth"].is_string())
      return file_error(file, where + ".auth: expected a base64 string");
    auto plain = base64_decode(entry["auth"].get<std::string>());
    auto colon = plain ? plain->find(':') : std::string::npos;
    if (!plain || colon == std::string::npos)
      return file_error(file, where + ".auth: not base64 of \"user:password\"");
    return std::optional<Credentials>{Credentials{plain->substr(0, colon), plain->substr(colon + 1)}};
  }
  return std::optional<Credentials>{};
}

Result<void> store_credentials(const std::string& file, const std::string& registry, const Credentials& c) {
  auto j = ENVRUN_TRY(load(file));
  j["auths"][registry] = {{"auth", base64_encode(c.username + ":" + c.password)}};
  auto slash = file.find_last_of('/');
  if (slash != std::string::npos && slash > 0) ENVRUN_CHECK(fs::mkdir_p(file.substr(0, slash), 0700));
  ENVRUN_CHECK(fs::atomic_write(file, j.dump(1, '\t') + "\n", 0600));
  if (::chmod(file.c_str(), 0600) != 0) return Error::sys(file + ": chmod 0600");
  return ok();
}

Result<bool> remove_credentials(const std::string& file, const std::string& registry) {
  auto j = ENVRUN_TRY(load(file));
  if (!j.contains("auths")) return false;
  bool removed = false;
  for (auto it = j["auths"].begin(); it != j["auths"].end();) {
    if (same_registry(it.key(), registry)) {
      it = j["auths"].erase(it);
      removed = true;
    } else {
      ++it;
    }
  }
  if (removed) ENVRUN_CHECK(fs::atomic_write(file, j.dump(1, '\t') + "\n", 0600));
  return removed;
}

}  // namespace envrun::registry
