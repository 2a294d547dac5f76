// Reading a bundle's config.json / config.yaml into oci::Spec, with errors that
// name the file, the field path and the reason ("config.json: process.args must
// not be empty", "config.yaml:12:5: process.user.uid: expected an unsigned
// integer, got a string"). Unknown fields are ignored as the runtime-spec asks;
// known fields of the wrong type are errors. All errors have ErrorKind::Config.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bundle/spec.hpp"
#include "kernel/result.hpp"

namespace envrun::bundle {

// Loads <bundle_dir>/config.json, else <bundle_dir>/config.yaml (or .yml).
// Both present is an error (ambiguous). Validates with validate_spec.
Result<oci::Spec> load_spec(const std::string& bundle_dir);

// Parse without semantic validation. `filename` is only used in messages.
Result<oci::Spec> parse_spec_json(std::string_view text, const std::string& filename);
Result<oci::Spec> parse_spec_yaml(std::string_view text, const std::string& filename);
// A YAML document converted to JSON (used by parse_spec_yaml; errors carry line:col).
Result<nlohmann::json> yaml_to_json(std::string_view text, const std::string& filename);

// Semantic checks: ociVersion present and 1.x, process.args non-empty, cwd absolute,
// root.path present and (if relative) not escaping the bundle, root exists and is a
// directory, namespace types known and not duplicated, mount destinations absolute,
// rlimit types known, capability names known, uid/gid mappings present iff a user
// namespace is created, seccomp actions/ops/archs known, hooks have absolute paths,
// envrun.isolation one of namespaces|intercept|both.
Result<void> validate_spec(const oci::Spec& spec, const std::string& filename,
                           const std::string& bundle_dir);

// The default spec written by `envrun spec` (like `runc spec`: sh, terminal true,
// default mounts, masked/readonly paths, namespaces; rootless variant with a
// user namespace mapping the caller's uid/gid).
nlohmann::json default_spec_json(bool rootless, uint32_t uid, uint32_t gid);

// Resolved absolute rootfs path for a spec loaded from bundle_dir.
std::string rootfs_path(const oci::Spec& spec, const std::string& bundle_dir);

}  // namespace envrun::bundle
