// validate_spec: the semantic checks a parsed config must pass before envrun runs it.
// This file: ociVersion, root (inside the bundle, an existing directory), process,
// mounts, hooks and the envrun section. Linux-specific checks: spec_validate_linux.cpp.
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>

#include "bundle/spec_decode.hpp"
#include "bundle/spec_parser.hpp"
#include "bundle/spec_validate.hpp"
#include "kernel/fs.hpp"

namespace envrun::bundle {

namespace detail {

Error invalid(const std::string& file, const std::string& path, const std::string& reason) {
  return Error::make(ErrorKind::Config, file + ": " + path + ": " + reason);
}

namespace {

bool absolute(const std::string& path) { return !path.empty() && path[0] == '/'; }

std::optional<std::string> real_path(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (!resolved) return std::nullopt;
  std::string out(resolved);
  std::free(resolved);
  return out;
}

bool inside(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

// A relative root must stay inside the bundle, both as written and once symlinks are
// resolved; an absolute root may be anywhere. Either way it must be a directory.
Result<void> validate_root(const oci::Spec& spec, const std::string& file,
                           const std::string& bundle_dir) {
  const std::string& path = spec.root.path;
  if (path.empty()) return invalid(file, "root.path", "missing");
  bool relative = !absolute(path);
  std::string lexical = fs::normalize(path);
  if (relative && (lexical == ".." || lexical.starts_with("../")))
    return invalid(file, "root.path", quote(path) + " escapes the bundle directory");
  std::string full = rootfs_path(spec, bundle_dir);
  struct stat st;
  if (::stat(full.c_str(), &st) != 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR) return invalid(file, "root.path", full + ": no such directory");
    return invalid(file, "root.path", full + ": " + std::strerror(e));
  }
  if (!S_ISDIR(st.st_mode)) return invalid(file, "root.path", full + ": not a directory");
  if (relative) {
    auto real_bundle = real_path(bundle_dir);
    auto real_root = real_path(full);
    if (!real_bundle || !real_root)
      return invalid(file, "root.path", full + ": cannot resolve: " + std::strerror(errno));
    if (!inside(*real_root, *real_bundle))
      return invalid(file, "root.path",
                     quote(path) + " resolves to " + *real_root +
                         ", outside the bundle directory " + *real_bundle);
  }
  return ok();
}

Result<void> validate_mounts(const std::vector<oci::Mount>& mounts, const std::string& file) {
  for (size_t i = 0; i < mounts.size(); ++i) {
    std::string at = "mounts[" + std::to_string(i) + "]";
    const oci::Mount& m = mounts[i];
    if (m.destination.empty()) return invalid(file, at + ".destination", "missing");
    if (!absolute(m.destination))
      return invalid(file, at + ".destination",
                     "must be an absolute path, got " + quote(m.destination));
    if (m.uid_mappings.empty() != m.gid_mappings.empty())
      return invalid(file, at, "uidMappings and gidMappings must be given together");
  }
  return ok();
}

Result<void> validate_hooks(const oci::Hooks& hooks, const std::string& file) {
  Result<void> result;
  oci::Hooks::each_phase(hooks, [&](const char* phase, const std::vector<oci::Hook>& list) {
    for (size_t i = 0; i < list.size() && result; ++i) {
      std::string at = std::string("hooks.") + phase + "[" + std::to_string(i) + "]";
      const oci::Hook& h = list[i];
      if (h.path.empty()) result = invalid(file, at + ".path", "missing");
      else if (!absolute(h.path))
        result = invalid(file, at + ".path", "must be an absolute path, got " + quote(h.path));
      else if (h.timeout && *h.timeout <= 0)
        result = invalid(file, at + ".timeout",
                         "must be a positive number of seconds, got " + std::to_string(*h.timeout));
    }
  });
  return result;
}

Result<void> validate_version(const std::string& version, const std::string& file) {
  if (version.empty()) return invalid(file, "ociVersion", "missing");
  if (!version.starts_with("1."))
    return invalid(file, "ociVersion",
                   "unsupported version " + quote(version) + " (envrun supports 1.x)");
  return ok();
}

}  // namespace

}  // namespace detail

Result<void> validate_spec(const oci::Spec& spec, const std::string& filename,
                           const std::string& bundle_dir) {
  using namespace detail;
  ENVRUN_CHECK(validate_version(spec.oci_version, filename));
  if (!spec.process) return Error::make(ErrorKind::Config, filename + ": process: missing");
  ENVRUN_CHECK(validate_process(*spec.process, filename));
  ENVRUN_CHECK(validate_root(spec, filename, bundle_dir));
  ENVRUN_CHECK(validate_mounts(spec.mounts, filename));
  ENVRUN_CHECK(validate_hooks(spec.hooks, filename));
  const std::string& iso = spec.envrun.isolation;
  if (iso != "namespaces" && iso != "intercept" && iso != "both")
    return invalid(filename, "envrun.isolation",
                   "expected namespaces, intercept or both, got " + quote(iso));
  return validate_linux(spec, filename);
}

}  // namespace envrun::bundle
