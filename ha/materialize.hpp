// Building a bundle directory from a manifest and the content store (the agent's side of
// a bundle sync). Every path is resolved beneath the new directory without following a
// symlink (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so that a manifest cannot
// write outside it; files are copies of their blobs; owners, modes and times are set as
// listed (directories last, deepest first).
#pragma once
#include <functional>
#include <string>

#include "ha/content_store.hpp"
#include "ha/manifest.hpp"

namespace envrun::ha {

// `dest` must not exist; it is created (mode 0755). On failure it may be left partly
// built: the caller removes it. `progress` is called every few entries (keep-alives).
Result<void> materialize(const Manifest& m, const ContentStore& store, const std::string& dest,
                         const std::function<void()>& progress = {});

}  // namespace envrun::ha
