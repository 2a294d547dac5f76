// Node readers and value parsers for intercept.yaml (see intercept_db_reader.hpp).
#include "bundle/intercept_db_reader.hpp"

#include <arpa/inet.h>

#include "kernel/fs.hpp"

namespace envrun::bundle::idb_yaml {

namespace {

Error reason(std::string why) { return Error::make(ErrorKind::Config, std::move(why)); }

const char* type_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Null: return "nothing (null)";
    default: return "nothing";
  }
}

const std::string* variable(const InterceptVars& v, std::string_view name) {
  if (name == "BUNDLE") return &v.bundle;
  if (name == "ROOTFS") return &v.rootfs;
  if (name == "HOME") return &v.home;
  if (name == "ID") return &v.id;
  if (name == "STATE") return &v.state;
  return nullptr;
}

Result<uint16_t> parse_port(std::string_view s, std::string_view whole) {
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string_view::npos)
    return reason("\"" + std::string(whole) + "\": expected a port (1..65535), \"ADDR:PORT\" or \"[ADDR]:PORT\"");
  unsigned long v = 0;
  for (char c : s) v = v * 10 + unsigned(c - '0');
  if (v < 1 || v > 65535) return reason("port " + std::string(s) + " out of range (1..65535)");
  return uint16_t(v);
}

}  // namespace

std::string one_of_message(const std::string& what, const std::string& got,
                           std::initializer_list<const char*> set) {
  std::string msg = "unknown " + what + " \"" + got + "\" (";
  bool first = true;
  for (const char* s : set) {
    msg += (first ? "" : ", ") + std::string(s);
    first = false;
  }
  return msg + ")";
}

Result<std::string> expand_vars(std::string_view text, const InterceptVars& vars) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      out += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    size_t close = text.find('}', i);
    if (i + 1 >= text.size() || text[i + 1] != '{' || close == std::string_view::npos)
      return reason("'$' must start ${NAME} (write $$ for a literal '$')");
    std::string_view name = text.substr(i + 2, close - i - 2);
    const std::string* value = variable(vars, name);
    if (!value)
      return reason("unknown variable ${" + std::string(name) + "} (BUNDLE, ROOTFS, HOME, ID, STATE)");
    if (value->empty()) return reason("variable ${" + std::string(name) + "} is empty here");
    out += *value;
    i = close;
  }
  return out;
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint ep;
  if (text.find(':') == std::string_view::npos) {
    ep.port = ENVRUN_TRY(parse_port(text, text));
    return ep;
  }
  std::string addr;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find("]:");
    if (close == std::string_view::npos)
      return reason("\"" + std::string(text) + "\": an IPv6 endpoint is \"[ADDR]:PORT\"");
    addr = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    if (::inet_pton(AF_INET6, addr.c_str(), ep.addr) != 1)
      return reason("\"" + addr + "\" is not an IPv6 address");
    ep.family = 6;
  } else {
    size_t colon = text.rfind(':');
    addr = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (addr.find(':') != std::string::npos)
      return reason("\"" + std::string(text) + "\": write IPv6 endpoints as \"[ADDR]:PORT\"");
    if (::inet_pton(AF_INET, addr.c_str(), ep.addr) != 1)
      return reason("\"" + addr + "\" is not an IPv4 address");
    ep.family = 4;
  }
  ep.port = ENVRUN_TRY(parse_port(port, text));
  return ep;
}

Error Reader::err(const YAML::Mark& at, const std::string& field, const std::string& why) const {
  std::string msg = source_;
  if (!at.is_null()) msg += ":" + std::to_string(at.line + 1) + ":" + std::to_string(at.column + 1);
  if (!field.empty()) msg += ": " + field;
  return Error::make(ErrorKind::Config, msg + ": " + why);
}

Result<Fields> Reader::fields(const YAML::Node& node, const std::string& field,
                              std::initializer_list<const char*> known) const {
  if (!node.IsMap()) return err(node, field, std::string("expected a mapping, got ") + type_name(node));
  Fields out;
  for (const auto& kv : node) {
    const YAML::Node& key = kv.first;
    if (!key.IsScalar()) return err(key, field, "mapping keys must be scalars");
    const std::string& name = key.Scalar();
    std::string path = field.empty() ? name : field + "." + name;
    bool is_known = false;
    for (const char* k : known) is_known = is_known || name == k;
    if (!is_known) {
      std::string msg = "unknown key (known: ";
      bool first = true;
      for (const char* k : known) msg += (first ? "" : ", ") + std::string(k), first = false;
      return err(key, path, msg + ")");
    }
    if (out.count(name)) return err(key, path, "duplicate key");
    out.emplace(name, kv.second);
  }
  return out;
}

Result<std::string> Reader::raw(const YAML::Node& n, const std::string& field) const {
  if (!n.IsScalar()) return err(n, field, std::string("expected a string, got ") + type_name(n));
  return n.Scalar();
}

Result<std::string> Reader::text(const YAML::Node& n, const std::string& field) const {
  std::string s = ENVRUN_TRY(raw(n, field));
  auto expanded = expand_vars(s, vars_);
  if (!expanded) return err(n, field, expanded.error().message);
  return std::move(*expanded);
}

Result<std::string> Reader::abs_path(const YAML::Node& n, const std::string& field) const {
  std::string s = ENVRUN_TRY(text(n, field));
  if (s.empty() || s[0] != '/') return err(n, field, "\"" + s + "\" is not an absolute path");
  if (s.find('\0') != std::string::npos) return err(n, field, "path contains a NUL byte");
  return fs::normalize(s);
}

Result<bool> Reader::boolean(const YAML::Node& n, const std::string& field) const {
  if (n.IsScalar() && n.Tag() == "?") {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  std::string got = n.IsScalar() ? "\"" + n.Scalar() + "\"" : type_name(n);
  return err(n, field, "expected true or false, got " + got);
}

Result<size_t> Reader::sequence(const YAML::Node& n, const std::string& field) const {
  if (n.IsNull()) return size_t(0);
  if (!n.IsSequence()) return err(n, field, std::string("expected a list, got ") + type_name(n));
  return n.size();
}

}  // namespace envrun::bundle::idb_yaml
