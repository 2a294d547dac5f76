// The bundle library of an agent (`envrun serve --root DIR`):
//   DIR/library/NAME/versions/N/   an immutable bundle dir (config.json|config.yaml,
//                                  intercept.yaml, envrun.yaml, rootfs/), N = 1, 2, ...
//   DIR/library/NAME/versions/N.meta.json   {created, source}
//   DIR/library/NAME/current       symlink to versions/N (switched by renaming a new symlink)
// A version is copied into DIR/library/NAME/.tmp-* first, validated as a bundle, then renamed
// into place: a failure leaves no version dir. Instances (DIR/state) run from a versions/N dir,
// so an instance pins its version; remove() refuses while one runs from the bundle.
#pragma once
#include <string>
#include <vector>

#include "kernel/result.hpp"

namespace envrun::agent {

struct BundleVersion {
  std::string name;
  int version = 0;
  std::string dir;      // absolute path of versions/N
  std::string created;  // RFC 3339, UTC
  std::string source;   // where it came from: "dir:PATH", "pull:REF", "change:FILE (from N)"
};

class Library {
 public:
  explicit Library(std::string root_dir);  // the agent dir DIR (not DIR/library)

  // Version 1 of a new bundle name (State error when the name exists).
  Result<BundleVersion> add(const std::string& name, const std::string& src_dir);
  // The next version of an existing bundle, copied from src_dir; becomes current.
  Result<BundleVersion> publish(const std::string& name, const std::string& src_dir);
  // The next version = current + one file replaced (config.json|config.yaml|intercept.yaml|
  // envrun.yaml), validated; becomes current.
  Result<BundleVersion> change_file(const std::string& name, const std::string& file,
                                    const std::string& text);
  Result<std::vector<BundleVersion>> versions(const std::string& name) const;  // ascending
  Result<BundleVersion> current(const std::string& name) const;
  Result<BundleVersion> version(const std::string& name, int n) const;
  Result<std::vector<std::string>> names() const;  // sorted
  // Removes the bundle and all its versions; State error while an instance in DIR/state
  // runs from one of its versions.
  Result<void> remove(const std::string& name);

  // Names: 1..128 chars of [A-Za-z0-9_.-], not starting with '.'.
  static Result<void> validate_name(const std::string& name);
  const std::string& root() const { return root_; }
  std::string library_dir() const { return root_ + "/library"; }
  std::string bundle_dir(const std::string& name) const { return library_dir() + "/" + name; }
  std::string version_dir(const std::string& name, int n) const {
    return bundle_dir(name) + "/versions/" + std::to_string(n);
  }
  // Instance ids in DIR/state whose bundle dir lies inside bundle_dir(name) (any status).
  std::vector<std::string> instances_of(const std::string& name) const;
  // When `dir` is a versions/N dir of this library: {name, N}; else an error.
  Result<BundleVersion> owner_of(const std::string& dir) const;

 private:
  Result<BundleVersion> install(const std::string& name, int n, const std::string& src_dir,
                                const std::string& source, const std::string& file,
                                const std::string& text);
  std::string root_;
};

// Checks a bundle dir the way create would: the config (config.json or config.yaml) parses
// and validates, root.path exists and is a directory, intercept.yaml and envrun.yaml (when
// present) are valid. Errors name the file, the field and the reason.
Result<void> validate_bundle_dir(const std::string& dir);

}  // namespace envrun::agent
