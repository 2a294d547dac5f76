// BUNDLE/envrun.yaml -> BundleBilling. Schema (version 1):
//   version: 1            (optional)
//   billing:
//     bundle: NAME        (optional)
//     labels: {KEY: VALUE, ...}
// Unknown keys are errors (a misspelt `lables:` must not silently drop a cost centre).
#include "billing/bundle_billing.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstring>

#include "kernel/fs.hpp"

namespace envrun::billing {

namespace {

constexpr size_t kMaxSettingsSize = 256u << 10;

Error at(const std::string& source, const YAML::Mark& m, const std::string& field, const std::string& why) {
  std::string msg = source;
  if (!m.is_null()) msg += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  if (!field.empty()) msg += ": " + field;
  return Error::make(ErrorKind::Config, msg + ": " + why);
}

bool valid_label_key(const std::string& k) {
  if (k.empty() || k.size() > 63) return false;
  for (char c : k)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

Result<void> parse_labels(const YAML::Node& node, const std::string& source, BundleBilling& out) {
  if (!node.IsMap()) return at(source, node.Mark(), "billing.labels", "expected a mapping of label names to values");
  for (const auto& kv : node) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    std::string field = "billing.labels." + key;
    if (!valid_label_key(key))
      return at(source, kv.first.Mark(), field, "label names are 1-63 characters of letters, digits, '_', '-', '.'");
    if (!kv.second.IsScalar()) return at(source, kv.second.Mark(), field, "expected a scalar value");
    if (!out.labels.emplace(key, kv.second.Scalar()).second) return at(source, kv.first.Mark(), field, "duplicate label");
  }
  return ok();
}

Result<void> parse_billing(const YAML::Node& node, const std::string& source, BundleBilling& out) {
  if (!node.IsMap()) return at(source, node.Mark(), "billing", "expected a mapping (bundle, labels)");
  for (const auto& kv : node) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (key == "bundle") {
      if (!kv.second.IsScalar() || kv.second.Scalar().empty())
        return at(source, kv.second.Mark(), "billing.bundle", "expected a non-empty name");
      out.bundle = kv.second.Scalar();
    } else if (key == "labels") {
      ENVRUN_CHECK(parse_labels(kv.second, source, out));
    } else {
      return at(source, kv.first.Mark(), "billing." + key, "unknown key (known: bundle, labels)");
    }
  }
  return ok();
}

}  // namespace

Result<BundleBilling> parse_bundle_billing(const std::string& text, const std::string& source) {
  BundleBilling out;
  if (text.size() > kMaxSettingsSize)
    return Error::make(ErrorKind::Config, source + ": larger than " + std::to_string(kMaxSettingsSize) + " bytes");
  try {
    YAML::Node doc = YAML::Load(text);
    if (doc.IsNull()) return out;
    if (!doc.IsMap()) return at(source, doc.Mark(), "", "expected a mapping at the top level");
    for (const auto& kv : doc) {
      std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
      if (key == "version") {
        if (!kv.second.IsScalar() || kv.second.Scalar() != "1")
          return at(source, kv.second.Mark(), "version", "only version 1 is known");
      } else if (key == "billing") {
        ENVRUN_CHECK(parse_billing(kv.second, source, out));
      } else if (key != "migration") {  // migration: bundle/migration_policy.hpp
        return at(source, kv.first.Mark(), key, "unknown key (known: version, billing, migration)");
      }
    }
  } catch (const YAML::Exception& e) {
    return at(source, e.mark, "", e.msg);
  }
  return out;
}

Result<BundleBilling> read_bundle_billing(const std::string& bundle_dir) {
  std::string path = bundle_dir + "/" + kBundleSettingsFile;
  if (!fs::exists(path)) return BundleBilling{};
  auto text = fs::read_file(path);
  if (!text) return Error::make(ErrorKind::Config, path + ": cannot read: " + std::strerror(text.error().sys_errno));
  return parse_bundle_billing(*text, path);
}

}  // namespace envrun::billing
