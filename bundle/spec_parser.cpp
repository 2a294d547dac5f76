// Entry points of the bundle config reader: text -> oci::Spec for JSON and YAML, and
// load_spec, which finds a bundle's config file, parses and validates it.
#include "bundle/spec_parser.hpp"

#include <unistd.h>

#include <climits>

#include "bundle/spec_decode.hpp"
#include "kernel/fs.hpp"

namespace envrun::bundle {

namespace {

using nlohmann::json;

// nlohmann reports the 1-based index of the last byte it read; turn that into
// line:column the way editors count (1-based, a tab is one column).
std::string line_col(std::string_view text, size_t byte) {
  size_t end = byte == 0 ? 0 : std::min(byte - 1, text.size());
  size_t line = 1, line_start = 0;  // line_start: 1-based index of the last '\n' seen
  for (size_t i = 0; i < end; ++i)
    if (text[i] == '\n') ++line, line_start = i + 1;
  size_t column = byte > line_start ? byte - line_start : 1;
  return std::to_string(line) + ":" + std::to_string(column);
}

// "[json.exception.parse_error.101] parse error at line 3, column 8: syntax error ..."
// -> "syntax error ...".
std::string parse_reason(const std::string& what) {
  size_t at = what.find("parse error");
  if (at == std::string::npos) return what;
  size_t colon = what.find(": ", at);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

Result<std::string> read_config(const std::string& path, const std::string& name) {
  auto text = fs::read_file(path);
  if (!text) {
    Error e = std::move(text).error();
    e.kind = ErrorKind::Config;
    return std::move(e).with_context(name);
  }
  return std::move(text).value();
}

}  // namespace

Result<oci::Spec> parse_spec_json(std::string_view text, const std::string& filename) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return Error::make(ErrorKind::Config,
                       filename + ":" + line_col(text, e.byte) + ": " + parse_reason(e.what()));
  } catch (const std::exception& e) {
    return Error::make(ErrorKind::Config, filename + ": " + e.what());
  }
  return detail::spec_from_json(doc, filename, nullptr);
}

Result<oci::Spec> parse_spec_yaml(std::string_view text, const std::string& filename) {
  detail::SourceMap sources;
  json doc = ENVRUN_TRY(detail::yaml_to_json_mapped(text, filename, &sources));
  return detail::spec_from_json(doc, filename, &sources);
}

Result<oci::Spec> load_spec(const std::string& bundle_dir) {
  if (!fs::is_dir(bundle_dir))
    return Error::make(ErrorKind::Config, "bundle " + bundle_dir + ": no such directory");
  std::vector<std::string> found;
  for (const char* name : {"config.json", "config.yaml", "config.yml"})
    if (fs::exists(fs::join(bundle_dir, name))) found.push_back(name);
  if (found.empty())
    return Error::make(ErrorKind::Config, bundle_dir + ": no config.json or config.yaml");
  if (found.size() > 1) {
    std::string names = found[0];
    for (size_t i = 1; i < found.size(); ++i)
      names += (i + 1 == found.size() ? " and " : ", ") + found[i];
    return Error::make(ErrorKind::Config,
                       "bundle " + bundle_dir + ": both " + names + " present (keep only one)");
  }
  const std::string& name = found[0];
  std::string text = ENVRUN_TRY(read_config(fs::join(bundle_dir, name), name));
  auto spec = name == "config.json" ? parse_spec_json(text, name) : parse_spec_yaml(text, name);
  if (!spec) return std::move(spec).error();
  ENVRUN_CHECK(validate_spec(*spec, name, bundle_dir));
  return spec;
}

std::string rootfs_path(const oci::Spec& spec, const std::string& bundle_dir) {
  const std::string& root = spec.root.path;
  if (!root.empty() && root[0] == '/') return fs::normalize(root);
  std::string base = bundle_dir;
  if (base.empty() || base[0] != '/') {
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd)) base = fs::join(cwd, base);
  }
  return fs::normalize(fs::join(base, root));
}

}  // namespace envrun::bundle
