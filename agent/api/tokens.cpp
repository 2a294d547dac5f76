// TokenStore: the tokens file, its lock, creation, revocation, authentication.
#include "agent/api/tokens.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

#include "ha/crypto.hpp"
#include "kernel/fd.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "runtime/state.hpp"

namespace envrun::agent::api {

namespace {

using nlohmann::json;

// flock on DIR/api/tokens.lock for as long as it lives (writers against each other).
struct FileLock {
  UniqueFd fd;
  static Result<FileLock> take(const std::string& path) {
    FileLock l;
    l.fd.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!l.fd) return Error::sys(path);
    if (::flock(l.fd.get(), LOCK_EX) < 0) return Error::sys("flock " + path);
    return l;
  }
};

json to_json(const Token& t) {
  return {{"name", t.name}, {"role", role_name(t.role)}, {"bundles", t.bundles}, {"sha256", t.sha256},
          {"created", t.created}, {"expires", t.expires}, {"revoked", t.revoked}};
}

Result<Token> from_json(const json& j, const std::string& file) {
  Token t;
  try {
    t.name = j.at("name").get<std::string>();
    auto r = parse_role(j.at("role").get<std::string>());
    if (!r) return Error::make(ErrorKind::Config, file + ": token " + t.name + ": role: unknown role");
    t.role = *r;
    t.bundles = j.value("bundles", std::vector<std::string>{});
    t.sha256 = j.at("sha256").get<std::string>();
    t.created = j.value("created", "");
    t.expires = j.value("expires", int64_t(0));
    t.revoked = j.value("revoked", "");
  } catch (const std::exception& e) {
    return Error::make(ErrorKind::Config, file + ": " + e.what());
  }
  return t;
}

std::string sha256_hex(const std::string& s) {
  ha::Sha256 h;
  h.update(ha::as_bytes(s));
  return ha::to_hex(h.final());
}

}  // namespace

int64_t parse_ttl(const std::string& s) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str() || v <= 0) return -1;
  std::string unit = end;
  if (unit.empty() || unit == "s") return v;
  if (unit == "m") return v * 60;
  if (unit == "h") return v * 3600;
  if (unit == "d") return v * 86400;
  return -1;
}

std::string token_to_json_text(const Token& t) {
  json j = to_json(t);
  j.erase("sha256");
  return j.dump();
}

TokenStore::TokenStore(std::string api_dir) : dir_(std::move(api_dir)) {}

Result<std::vector<Token>> TokenStore::read_locked() const {
  std::vector<Token> out;
  if (!fs::exists(file())) return out;
  auto text = ENVRUN_TRY(fs::read_file(file()));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("tokens") || !j["tokens"].is_array())
    return Error::make(ErrorKind::Config, file() + ": not a tokens file (want {\"tokens\": [...]})");
  for (const auto& e : j["tokens"]) out.push_back(ENVRUN_TRY(from_json(e, file())));
  return out;
}

Result<void> TokenStore::write_locked(const std::vector<Token>& all) const {
  json arr = json::array();
  for (const auto& t : all) arr.push_back(to_json(t));
  return fs::atomic_write(file(), json{{"tokens", arr}}.dump(2) + "\n", 0600);
}

Result<std::vector<Token>> TokenStore::list() const { return read_locked(); }

Result<std::string> TokenStore::create(const NewToken& n) {
  ENVRUN_CHECK(runtime::StateStore::validate_id(n.name));
  for (const auto& b : n.bundles) ENVRUN_CHECK(runtime::StateStore::validate_id(b));
  ENVRUN_CHECK(fs::mkdir_p(dir_, 0700));
  ::chmod(dir_.c_str(), 0700);
  auto lock = ENVRUN_TRY(FileLock::take(dir_ + "/tokens.lock"));
  auto all = ENVRUN_TRY(read_locked());
  std::erase_if(all, [&](const Token& t) { return t.name == n.name && !t.revoked.empty(); });
  for (const auto& t : all)
    if (t.name == n.name) return Error::make(ErrorKind::State, "token " + n.name + " exists (revoke it first)");
  std::array<uint8_t, 32> raw{};
  ENVRUN_CHECK(ha::random_bytes(raw));
  std::string secret = "envrun_" + ha::to_hex(ha::Bytes(raw.data(), raw.size()));
  Token t{n.name, n.role, n.bundles, sha256_hex(secret), log::now_rfc3339(),
          n.ttl_s > 0 ? int64_t(std::time(nullptr)) + n.ttl_s : 0, ""};
  all.push_back(t);
  ENVRUN_CHECK(write_locked(all));
  return secret;
}

Result<void> TokenStore::revoke(const std::string& name) {
  ENVRUN_CHECK(runtime::StateStore::validate_id(name));
  if (!fs::is_dir(dir_)) return Error::make(ErrorKind::NotFound, "token " + name + ": no such token");
  auto lock = ENVRUN_TRY(FileLock::take(dir_ + "/tokens.lock"));
  auto all = ENVRUN_TRY(read_locked());
  for (auto& t : all)
    if (t.name == name && t.revoked.empty()) {
      t.revoked = log::now_rfc3339();
      return write_locked(all);
    }
  return Error::make(ErrorKind::NotFound, "token " + name + ": no such live token");
}

Result<Token> TokenStore::authenticate(const std::string& secret) {
  std::string want = sha256_hex(secret);
  std::lock_guard<std::mutex> g(mu_);
  struct stat st{};
  if (::stat(file().c_str(), &st) != 0) return Error::make(ErrorKind::NotFound, "unknown token");
  int64_t mt = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (mt != cache_mtime_ns_ || st.st_ino != cache_ino_) {
    cache_ = ENVRUN_TRY(read_locked());
    cache_mtime_ns_ = mt;
    cache_ino_ = st.st_ino;
  }
  for (const auto& t : cache_) {
    if (!ha::equal_ct(ha::as_bytes(t.sha256), ha::as_bytes(want))) continue;
    if (!t.revoked.empty()) return Error::make(ErrorKind::State, "token " + t.name + " was revoked");
    if (t.expires && t.expires <= int64_t(std::time(nullptr)))
      return Error::make(ErrorKind::State, "token " + t.name + " expired");
    return t;
  }
  return Error::make(ErrorKind::NotFound, "unknown token");
}

}  // namespace envrun::agent::api
