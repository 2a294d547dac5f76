// The `interceptors` list of intercept.yaml: which interceptors, in which order, initially
// enabled or not, with which options. Names come from known_interceptors(); the options
// each one understands (and their values) are listed here.
#include <algorithm>
#include <vector>

#include "bundle/intercept_db_reader.hpp"

namespace envrun::bundle::idb_yaml {

namespace {

struct OptionSpec {
  const char* interceptor;
  const char* key;
  std::vector<const char*> values;  // empty: any string
};

const std::vector<OptionSpec>& option_specs() {
  static const std::vector<OptionSpec> specs = {
      {"redirect", "exec_static", {"deny", "warn", "allow"}},
  };
  return specs;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

// Empty when (interceptor, key, value) is allowed, else the reason.
std::string option_problem(const std::string& chain_name, const std::string& name, const std::string& v) {
  const OptionSpec* spec = nullptr;
  std::vector<std::string> known;
  for (const auto& s : option_specs()) {
    if (chain_name != s.interceptor) continue;
    known.push_back(s.key);
    if (name == s.key) spec = &s;
  }
  if (!spec) return "unknown option of " + chain_name + " (known: " + join_names(known) + ")";
  if (!spec->values.empty() &&
      std::none_of(spec->values.begin(), spec->values.end(), [&](const char* a) { return v == a; })) {
    std::vector<std::string> allowed(spec->values.begin(), spec->values.end());
    return "\"" + v + "\" is not one of " + join_names(allowed);
  }
  return "";
}

Result<std::pair<std::string, std::string>> option(const Reader& r, const std::string& chain_name,
                                                   const YAML::Node& key, const YAML::Node& value,
                                                   const std::string& field) {
  if (!key.IsScalar()) return r.err(key, field, "option names must be scalars");
  std::string name = key.Scalar(), path = field + "." + name;
  std::string unknown = option_problem(chain_name, name, "");
  if (unknown.rfind("unknown option", 0) == 0) return r.err(key, path, unknown);
  std::string v = ENVRUN_TRY(r.text(value, path));
  if (std::string why = option_problem(chain_name, name, v); !why.empty()) return r.err(value, path, why);
  return std::pair{name, v};
}

Result<InterceptorSpec> chain_entry(const Reader& r, const YAML::Node& item, size_t i) {
  std::string f = "interceptors[" + std::to_string(i) + "]";
  Fields k = ENVRUN_TRY(r.fields(item, f, {"name", "enabled", "options"}));
  InterceptorSpec spec;
  spec.line = Reader::line_of(item);
  if (!k.count("name")) return r.err(item, f + ".name", "required");
  spec.name = ENVRUN_TRY(r.text(k.at("name"), f + ".name"));
  const auto& known = known_interceptors();
  if (std::find(known.begin(), known.end(), spec.name) == known.end())
    return r.err(k.at("name"), f + ".name", "unknown interceptor \"" + spec.name + "\" (" + join_names(known) + ")");
  if (k.count("enabled")) spec.enabled = ENVRUN_TRY(r.boolean(k.at("enabled"), f + ".enabled"));
  if (k.count("options")) {
    const YAML::Node& opts = k.at("options");
    if (opts.IsNull()) return spec;
    if (!opts.IsMap()) return r.err(opts, f + ".options", "expected a mapping of option: value");
    for (const auto& kv : opts) {
      auto opt = ENVRUN_TRY(option(r, spec.name, kv.first, kv.second, f + ".options"));
      for (const auto& prev : spec.options)
        if (prev.first == opt.first) return r.err(kv.first, f + ".options." + opt.first, "duplicate key");
      spec.options.push_back(std::move(opt));
    }
  }
  return spec;
}

}  // namespace

Result<void> parse_chain(const Reader& r, const YAML::Node& list, InterceptDb& db) {
  size_t n = ENVRUN_TRY(r.sequence(list, "interceptors"));
  db.interceptors.clear();
  for (size_t i = 0; i < n; ++i) {
    InterceptorSpec spec = ENVRUN_TRY(chain_entry(r, list[i], i));
    for (size_t j = 0; j < db.interceptors.size(); ++j)
      if (db.interceptors[j].name == spec.name)
        return r.err(list[i], "interceptors[" + std::to_string(i) + "].name",
                     "\"" + spec.name + "\" is already interceptors[" + std::to_string(j) + "] (line " +
                         std::to_string(db.interceptors[j].line) + ")");
    db.interceptors.push_back(std::move(spec));
  }
  return ok();
}

}  // namespace envrun::bundle::idb_yaml

namespace envrun::bundle {

Result<void> check_interceptor_option(const std::string& interceptor, const std::string& key,
                                      const std::string& value) {
  std::string why = idb_yaml::option_problem(interceptor, key, value);
  if (!why.empty()) return Error::make(ErrorKind::Usage, interceptor + "." + key + ": " + why);
  return ok();
}

}  // namespace envrun::bundle
