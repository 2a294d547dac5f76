// The bundle's config.json from an image config (OCI image-spec "config" object):
// Entrypoint + Cmd -> process.args, Env (over the default PATH/TERM), WorkingDir -> cwd,
// User (numeric, or names looked up in the rootfs' /etc/passwd and /etc/group),
// ExposedPorts and Labels -> annotations. Starts from default_spec_json.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "kernel/result.hpp"

namespace envrun::registry {

struct UserIds {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// "1000", "1000:100", "app", "app:staff" against <rootfs>/etc/passwd and /etc/group.
Result<UserIds> resolve_user(const std::string& user, const std::string& rootfs);

// `image_config` is the config blob (JSON); errors name the field.
Result<nlohmann::json> spec_from_image_config(const std::string& image_config, const std::string& rootfs,
                                              const std::string& image_name);

// Text of the default intercept.yaml written next to a pulled image's config.json.
std::string default_intercept_yaml(const std::string& image_name);

}  // namespace envrun::registry
