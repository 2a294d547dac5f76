// config.yaml -> JSON. Plain scalars are resolved as YAML 1.2's core schema does
// (null, true/false, integers, floats; a leading 0 also reads as octal, as YAML 1.1 and
// go-yaml do, so that "fileMode: 0666" means what it says), quoted and block scalars stay
// strings. Every node's line:column is kept by JSON pointer so that type errors found
// later, on the JSON, can point into the YAML file. Merge keys ("<<") are honoured and
// duplicate keys are errors.
#include <cerrno>
#include <cstdlib>

#include <yaml-cpp/yaml.h>

#include "bundle/spec_decode.hpp"
#include "bundle/spec_parser.hpp"

namespace envrun::bundle {

namespace detail {

namespace {

using nlohmann::json;

constexpr int kMaxDepth = 256;
constexpr size_t kMaxNodes = 1'000'000;  // bounds alias expansion ("billion laughs")

bool all_of(std::string_view s, const char* set) {
  return !s.empty() && s.find_first_not_of(set) == std::string_view::npos;
}

// Integer forms: [-+]?(0x hex | 0o octal | 0 octal | decimal).
std::optional<json> resolve_integer(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16, s.remove_prefix(2);
    if (!all_of(s, "0123456789abcdefABCDEF")) return std::nullopt;
  } else if (s.size() > 2 && s[0] == '0' && s[1] == 'o') {
    base = 8, s.remove_prefix(2);
    if (!all_of(s, "01234567")) return std::nullopt;
  } else if (!all_of(s, "0123456789")) {
    return std::nullopt;
  } else if (s.size() > 1 && s[0] == '0' && all_of(s, "01234567")) {
    base = 8;
  }
  std::string digits(s);
  errno = 0;
  unsigned long long magnitude = std::strtoull(digits.c_str(), nullptr, base);
  if (errno == ERANGE) return std::nullopt;  // too big: left to the float reading
  if (!negative) return json(static_cast<uint64_t>(magnitude));
  if (magnitude > 9223372036854775808ULL) return std::nullopt;
  return json(magnitude == 9223372036854775808ULL ? INT64_MIN
                                                   : -static_cast<int64_t>(magnitude));
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
std::optional<json> resolve_float(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t mantissa = digits();
  if (i < s.size() && s[i] == '.') ++i, mantissa += digits();
  if (mantissa == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (digits() == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  return json(std::strtod(std::string(s).c_str(), nullptr));
}

std::optional<json> resolve_plain(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return json(nullptr);
  if (s == "true" || s == "True" || s == "TRUE") return json(true);
  if (s == "false" || s == "False" || s == "FALSE") return json(false);
  if (auto i = resolve_integer(s)) return i;
  return resolve_float(s);
}

class YamlToJson {
 public:
  YamlToJson(const std::string& filename, SourceMap* sources)
      : filename_(filename), sources_(sources) {}

  Result<json> convert(const YAML::Node& node, const std::string& ptr, int depth) {
    if (depth > kMaxDepth) return error_at(node.Mark(), "nesting too deep");
    if (++nodes_ > kMaxNodes) return error_at(node.Mark(), "document too large (alias expansion?)");
    switch (node.Type()) {
      case YAML::NodeType::Scalar: return scalar(node, ptr);
      case YAML::NodeType::Sequence: {
        remember(ptr, node.Mark(), std::nullopt);
        json out = json::array();
        for (size_t i = 0; i < node.size(); ++i)
          out.push_back(ENVRUN_TRY(convert(node[i], ptr + "/" + std::to_string(i), depth + 1)));
        return out;
      }
      case YAML::NodeType::Map: {
        remember(ptr, node.Mark(), std::nullopt);
        json out = json::object();
        ENVRUN_CHECK(map_into(node, ptr, depth, out, false));
        return out;
      }
      default:
        remember(ptr, node.Mark(), std::nullopt);
        return json(nullptr);
    }
  }

  Error error_at(const YAML::Mark& mark, const std::string& reason) const {
    std::string msg = filename_;
    if (!mark.is_null())
      msg += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    return Error::make(ErrorKind::Config, msg + ": " + reason);
  }

 private:
  // Explicit keys first, then "<<" merges fill the keys still missing.
  Result<void> map_into(const YAML::Node& node, const std::string& ptr, int depth, json& out,
                        bool merging) {
    std::vector<YAML::Node> merges;
    for (const auto& entry : node) {
      const YAML::Node& key = entry.first;
      const YAML::Node& value = entry.second;
      if (!key.IsScalar()) return error_at(key.Mark(), "mapping keys must be scalars");
      const std::string& name = key.Scalar();
      if (name == "<<" && key.Tag() == "?") {
        merges.push_back(value);
        continue;
      }
      if (out.contains(name)) {
        if (merging) continue;
        return error_at(key.Mark(), "duplicate key \"" + name + "\"");
      }
      std::string child = ptr + "/" + pointer_token(name);
      out[name] = ENVRUN_TRY(convert(value, child, depth + 1));
      if (value.Mark().is_null()) remember(child, key.Mark(), std::nullopt);
    }
    for (const YAML::Node& m : merges) ENVRUN_CHECK(merge(m, ptr, depth, out));
    return ok();
  }

  Result<void> merge(const YAML::Node& m, const std::string& ptr, int depth, json& out) {
    if (m.IsMap()) return map_into(m, ptr, depth + 1, out, true);
    if (!m.IsSequence()) return error_at(m.Mark(), "merge key \"<<\" needs a mapping");
    for (size_t i = 0; i < m.size(); ++i) {
      if (!m[i].IsMap()) return error_at(m[i].Mark(), "merge key \"<<\" needs mappings");
      ENVRUN_CHECK(map_into(m[i], ptr, depth + 1, out, true));
    }
    return ok();
  }

  Result<json> scalar(const YAML::Node& node, const std::string& ptr) {
    const std::string& tag = node.Tag();
    const std::string& text = node.Scalar();
    bool is_text = tag == "!" || tag == "tag:yaml.org,2002:str";
    if (!is_text) {
      if (auto value = resolve_plain(text)) {
        remember(ptr, node.Mark(), text);
        return std::move(*value);
      }
    }
    remember(ptr, node.Mark(), std::nullopt);
    return json(text);
  }

  // The first position recorded for a pointer wins (explicit keys beat merged ones).
  void remember(const std::string& ptr, const YAML::Mark& mark, std::optional<std::string> plain) {
    if (!sources_ || mark.is_null()) return;
    sources_->emplace(ptr, SourcePos{mark.line + 1, mark.column + 1, std::move(plain)});
  }

  const std::string& filename_;
  SourceMap* sources_;
  size_t nodes_ = 0;
};

}  // namespace

Result<json> yaml_to_json_mapped(std::string_view text, const std::string& filename,
                                 SourceMap* sources) {
  YamlToJson converter(filename, sources);
  try {
    YAML::Node doc = YAML::Load(std::string(text));
    return converter.convert(doc, "", 0);
  } catch (const YAML::Exception& e) {
    return converter.error_at(e.mark, e.msg);
  } catch (const std::exception& e) {
    return Error::make(ErrorKind::Config, filename + ": " + e.what());
  }
}

}  // namespace detail

// The JSON that parse_spec_json reads as the same Spec parse_spec_yaml gives: plain
// scalars used as strings ("hostname: 12") become JSON strings, so the document must
// also convert to a Spec (type errors are reported with their line:column).
Result<nlohmann::json> yaml_to_json(std::string_view text, const std::string& filename) {
  detail::SourceMap sources;
  nlohmann::json doc = ENVRUN_TRY(detail::yaml_to_json_mapped(text, filename, &sources));
  detail::TextFixups fixups;
  ENVRUN_CHECK(detail::spec_from_json(doc, filename, &sources, &fixups));
  for (auto& [ptr, value] : fixups) doc[nlohmann::json::json_pointer(ptr)] = value;
  return doc;
}

}  // namespace envrun::bundle
