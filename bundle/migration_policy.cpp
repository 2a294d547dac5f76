// BUNDLE/envrun.yaml `migration:` -> MigrationPolicy (schema in migration_policy.hpp).
// Strict: unknown keys, unknown events, thresholds without their event (and events without
// a threshold) are errors, each naming file:line:col, the field and the reason.
#include "bundle/migration_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernel/fs.hpp"

namespace envrun::bundle {

namespace {

constexpr size_t kMaxSettingsSize = 256u << 10;
constexpr int64_t kMaxForMs = 3600 * 1000;
constexpr const char* kKnownKeys =
    "peer, psk_file, on, memory_pressure_above, memory_psi_above, cpu_pressure_above, for, retry_after, tcp_established";

struct Ctx {
  const std::string& source;
  const std::string& bundle_dir;
};

Error at(const Ctx& c, const YAML::Mark& m, const std::string& field, const std::string& why) {
  std::string msg = c.source;
  if (!m.is_null()) msg += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  if (!field.empty()) msg += ": " + field;
  return Error::make(ErrorKind::Config, msg + ": " + why);
}

Result<std::string> scalar(const Ctx& c, const YAML::Node& n, const std::string& field, const char* want) {
  if (!n.IsScalar() || n.Scalar().empty()) return at(c, n.Mark(), field, std::string("expected ") + want);
  return n.Scalar();
}

Result<unsigned> parse_events(const Ctx& c, const YAML::Node& n) {
  if (!n.IsSequence() || n.size() == 0)
    return at(c, n.Mark(), "migration.on", "expected a list of events (drain, sigterm, memory_pressure, cpu_pressure)");
  unsigned on = 0;
  for (const auto& e : n) {
    std::string name = e.IsScalar() ? e.Scalar() : "";
    unsigned bit = 0;
    for (auto ev : {MigrationEvent::Drain, MigrationEvent::Sigterm, MigrationEvent::MemoryPressure, MigrationEvent::CpuPressure})
      if (name == migration_event_name(ev)) bit = unsigned(ev);
    if (!bit)
      return at(c, e.Mark(), "migration.on", "unknown event \"" + name + "\" (known: drain, sigterm, memory_pressure, cpu_pressure)");
    if (on & bit) return at(c, e.Mark(), "migration.on", "\"" + name + "\" is listed twice");
    on |= bit;
  }
  return on;
}

Result<double> percent(const Ctx& c, const YAML::Node& n, const std::string& field) {
  auto v = parse_percent(n.IsScalar() ? n.Scalar() : "");
  if (!v) return at(c, n.Mark(), field, "expected a percentage above 0 and at most 100, like 80%");
  return *v;
}

Result<int64_t> duration(const Ctx& c, const YAML::Node& n, const std::string& field, int64_t max_ms) {
  auto v = parse_duration(n.IsScalar() ? n.Scalar() : "");
  if (!v) return at(c, n.Mark(), field, "expected a duration like 10s, 500ms or 2m");
  if (*v > max_ms) return at(c, n.Mark(), field, "at most " + std::to_string(max_ms / 1000) + "s");
  return *v;
}

// false: an unknown key.
Result<bool> parse_entry(const Ctx& c, const std::string& key, const YAML::Node& v, MigrationPolicy& p) {
  std::string field = "migration." + key;
  if (key == "peer") {
    p.peer = ENVRUN_TRY(scalar(c, v, field, "ADDR:PORT of the agent to move to"));
    if (auto why = check_peer_address(p.peer); !why.empty()) return at(c, v.Mark(), field, why);
  } else if (key == "psk_file") {
    p.psk_file = ENVRUN_TRY(scalar(c, v, field, "the path of the peer's pre-shared key file"));
    if (p.psk_file[0] != '/') p.psk_file = c.bundle_dir + "/" + p.psk_file;
  } else if (key == "on") {
    p.on = ENVRUN_TRY(parse_events(c, v));
  } else if (key == "memory_pressure_above") {
    p.memory_above = ENVRUN_TRY(percent(c, v, field));
  } else if (key == "memory_psi_above") {
    p.memory_psi_above = ENVRUN_TRY(percent(c, v, field));
  } else if (key == "cpu_pressure_above") {
    p.cpu_psi_above = ENVRUN_TRY(percent(c, v, field));
  } else if (key == "for") {
    p.for_ms = ENVRUN_TRY(duration(c, v, field, kMaxForMs));
  } else if (key == "retry_after") {
    p.retry_ms = ENVRUN_TRY(duration(c, v, field, 24 * kMaxForMs));
    if (p.retry_ms < 1000) return at(c, v.Mark(), field, "at least 1s");
  } else if (key == "tcp_established") {
    std::string s = v.IsScalar() ? v.Scalar() : "";
    if (s != "true" && s != "false") return at(c, v.Mark(), field, "expected true or false");
    p.tcp_established = s == "true";
  } else {
    return false;
  }
  return true;
}

// The thresholds and the events must agree; events other than drain need a peer.
Result<void> check_consistent(const Ctx& c, const YAML::Node& section, MigrationPolicy& p) {
  auto mark_of = [&](const char* key) { return section[key] ? section[key].Mark() : section.Mark(); };
  bool mem = p.memory_above || p.memory_psi_above;
  if (p.has(MigrationEvent::MemoryPressure) && !mem)
    return at(c, mark_of("on"), "migration.on", "memory_pressure needs memory_pressure_above or memory_psi_above");
  if (!p.has(MigrationEvent::MemoryPressure) && mem)
    return at(c, mark_of(p.memory_above ? "memory_pressure_above" : "memory_psi_above"),
              p.memory_above ? "migration.memory_pressure_above" : "migration.memory_psi_above",
              "set, but memory_pressure is not in migration.on");
  if (p.has(MigrationEvent::CpuPressure) && !p.cpu_psi_above)
    return at(c, mark_of("on"), "migration.on", "cpu_pressure needs cpu_pressure_above");
  if (!p.has(MigrationEvent::CpuPressure) && p.cpu_psi_above)
    return at(c, mark_of("cpu_pressure_above"), "migration.cpu_pressure_above", "set, but cpu_pressure is not in migration.on");
  unsigned needs_peer = unsigned(MigrationEvent::Sigterm) | unsigned(MigrationEvent::MemoryPressure) | unsigned(MigrationEvent::CpuPressure);
  if ((p.on & needs_peer) && p.peer.empty())
    return at(c, mark_of("on"), "migration.peer", "required by the events sigterm, memory_pressure and cpu_pressure");
  return ok();
}

Result<void> parse_section(const Ctx& c, const YAML::Node& node, MigrationPolicy& p) {
  if (!node.IsMap()) return at(c, node.Mark(), "migration", std::string("expected a mapping (") + kKnownKeys + ")");
  p.present = true;
  for (const auto& kv : node) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (!ENVRUN_TRY(parse_entry(c, key, kv.second, p)))
      return at(c, kv.first.Mark(), "migration." + key, std::string("unknown key (known: ") + kKnownKeys + ")");
  }
  return check_consistent(c, node, p);
}

// RFC 1123: dot-separated labels of letters, digits and '-' (not at either end), 1-63
// characters each, 253 in all.
bool valid_host_name(const std::string& h) {
  if (h.empty() || h.size() > 253) return false;
  size_t start = 0;
  while (start <= h.size()) {
    size_t dot = h.find('.', start);
    std::string label = h.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return true;
}

}  // namespace

const char* migration_event_name(MigrationEvent e) {
  switch (e) {
    case MigrationEvent::Drain: return "drain";
    case MigrationEvent::Sigterm: return "sigterm";
    case MigrationEvent::MemoryPressure: return "memory_pressure";
    case MigrationEvent::CpuPressure: return "cpu_pressure";
  }
  return "?";
}

std::optional<double> parse_percent(const std::string& s) {
  std::string t = s;
  if (!t.empty() && t.back() == '%') t.pop_back();
  if (t.empty() || !(std::isdigit(static_cast<unsigned char>(t[0])) || t[0] == '.')) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (*end || !std::isfinite(v) || v <= 0 || v > 100) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_duration(const std::string& s) {
  if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '.')) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  std::string unit = end;
  if (end == s.c_str() || !std::isfinite(v) || v < 0) return std::nullopt;
  double scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : unit == "h" ? 3600000 : -1;
  if (scale < 0) return std::nullopt;  // a bare number is ambiguous in a file: the unit is required
  if (v * scale > 1e15) return std::nullopt;
  return int64_t(v * scale);
}

std::string check_peer_address(const std::string& s) {
  std::string host, port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return "unbalanced [ (want [IPV6]:PORT)";
    host = s.substr(1, close - 1), port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) return "no port (want ADDR:PORT)";
    host = s.substr(0, colon), port = s.substr(colon + 1);
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end || p < 1 || p > 65535) return "port must be 1..65535";
  in6_addr a6;
  in_addr a4;
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &a6) == 1) return "";
  if (valid_host_name(host)) return "";  // looked up when the container moves, on the agent's host
  return "\"" + host + "\" is neither a host name nor a numeric IPv4 or IPv6 address";
}

Result<MigrationPolicy> parse_migration_policy(const std::string& text, const std::string& source,
                                               const std::string& bundle_dir) {
  MigrationPolicy p;
  Ctx c{source, bundle_dir};
  if (text.size() > kMaxSettingsSize)
    return Error::make(ErrorKind::Config, source + ": larger than " + std::to_string(kMaxSettingsSize) + " bytes");
  try {
    YAML::Node doc = YAML::Load(text);
    if (!doc.IsMap()) return p;  // empty, or not a mapping: reported by the billing parser
    for (const auto& kv : doc)
      if (kv.first.IsScalar() && kv.first.Scalar() == "migration") ENVRUN_CHECK(parse_section(c, kv.second, p));
  } catch (const YAML::Exception& e) {
    return at(c, e.mark, "", e.msg);
  }
  return p;
}

Result<MigrationPolicy> read_migration_policy(const std::string& bundle_dir) {
  std::string path = bundle_dir + "/envrun.yaml";
  if (!fs::exists(path)) return MigrationPolicy{};
  auto text = fs::read_file(path);
  if (!text) return Error::make(ErrorKind::Config, path + ": cannot read: " + std::strerror(text.error().sys_errno));
  return parse_migration_policy(*text, path, bundle_dir);
}

}  // namespace envrun::bundle
