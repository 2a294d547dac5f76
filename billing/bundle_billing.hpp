// The bundle's own billing settings: the `billing:` section of BUNDLE/envrun.yaml
// (envrun-billing(5), "BUNDLE SETTINGS"). They give the name under which the bundle is
// billed and labels copied to every ledger row; the container's annotations
// (envrun.billing.bundle, envrun.label.KEY) override them key by key.
#pragma once
#include <map>
#include <string>

#include "kernel/result.hpp"

namespace envrun::billing {

inline constexpr const char* kBundleSettingsFile = "envrun.yaml";

struct BundleBilling {
  std::string bundle;                         // empty: not set (the directory name is used)
  std::map<std::string, std::string> labels;  // key -> value
};

// Parses the text of an envrun.yaml; errors are "<source>:<line>:<col>: <field>: <reason>".
Result<BundleBilling> parse_bundle_billing(const std::string& text, const std::string& source);
// Reads BUNDLE_DIR/envrun.yaml; a bundle without the file has no settings (empty result).
Result<BundleBilling> read_bundle_billing(const std::string& bundle_dir);

}  // namespace envrun::billing
