// The manifest on the wire, and the receiver's validation of it.
#include <set>
#include <string_view>

#include "ha/crypto.hpp"
#include "ha/manifest.hpp"

namespace envrun::ha {

nlohmann::json manifest_to_json(const Manifest& m) {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : m.entries) {
    std::string extra = e.kind == EntryKind::File ? e.sha256 : e.target;
    entries.push_back({e.path, std::string(1, char(e.kind)), e.mode, e.uid, e.gid, e.size, e.mtime_ns, extra});
  }
  return {{"version", 1}, {"entries", std::move(entries)}};
}

namespace {

Error bad(size_t i, const std::string& path, const std::string& why) {
  return Error::make(ErrorKind::Generic, "manifest entry " + std::to_string(i) + (path.empty() ? "" : " \"" + path + "\"") +
                                             ": " + why);
}

// Relative, '/'-separated, no empty, "." or ".." component, no NUL, bounded length.
bool clean_path(std::string_view p) {
  if (p.empty() || p.size() > 4096 || p.front() == '/' || p.back() == '/') return false;
  size_t start = 0;
  for (;;) {
    size_t end = p.find('/', start);
    std::string_view c = p.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (c.empty() || c == "." || c == ".." || c.find('\0') != std::string_view::npos || c.size() > 255) return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

std::string parent_of(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == std::string::npos ? std::string() : p.substr(0, slash);
}

bool non_negative(const nlohmann::json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

Result<ManifestEntry> entry_from_json(size_t i, const nlohmann::json& a) {
  if (!a.is_array() || a.size() != 8 || !a[0].is_string() || !a[1].is_string() || !non_negative(a[2]) ||
      !non_negative(a[3]) || !non_negative(a[4]) || !non_negative(a[5]) || !a[6].is_number_integer() || !a[7].is_string())
    return bad(i, "", "expected [path, kind, mode, uid, gid, size, mtime_ns, sha256|target]");
  ManifestEntry e;
  e.path = a[0].get<std::string>();
  std::string kind = a[1].get<std::string>();
  if (kind.size() != 1 || std::string_view("dflhp").find(kind[0]) == std::string_view::npos)
    return bad(i, e.path, "unknown kind \"" + kind + "\"");
  e.kind = EntryKind(kind[0]);
  uint64_t mode = a[2].get<uint64_t>(), uid = a[3].get<uint64_t>(), gid = a[4].get<uint64_t>();
  if (mode > 07777 || uid > 0xfffffffeu || gid > 0xfffffffeu) return bad(i, e.path, "mode, uid or gid out of range");
  e.mode = uint32_t(mode), e.uid = uint32_t(uid), e.gid = uint32_t(gid);
  e.size = a[5].get<uint64_t>();
  e.mtime_ns = a[6].get<int64_t>();
  (e.kind == EntryKind::File ? e.sha256 : e.target) = a[7].get<std::string>();
  return e;
}

}  // namespace

Result<Manifest> manifest_from_json(const nlohmann::json& j, const Limits& limits) {
  if (!j.is_object() || j.value("version", 0) != 1 || !j.contains("entries") || !j["entries"].is_array())
    return Error::make(ErrorKind::Generic, "manifest: expected {\"version\": 1, \"entries\": [...]}");
  const auto& arr = j["entries"];
  if (arr.size() > limits.max_files)
    return Error::make(ErrorKind::Generic, "manifest: " + std::to_string(arr.size()) + " entries, the limit is " +
                                               std::to_string(limits.max_files));
  Manifest m;
  std::set<std::string> dirs, files, seen;
  uint64_t bytes = 0;
  for (size_t i = 0; i < arr.size(); ++i) {
    auto e = ENVRUN_TRY(entry_from_json(i, arr[i]));
    if (!clean_path(e.path)) return bad(i, e.path, "not a clean relative path");
    if (!seen.insert(e.path).second) return bad(i, e.path, "listed twice");
    std::string parent = parent_of(e.path);
    if (!parent.empty() && !dirs.count(parent)) return bad(i, e.path, "its parent is not an earlier directory entry");
    switch (e.kind) {
      case EntryKind::Dir: dirs.insert(e.path); break;
      case EntryKind::File:
        if (!is_sha256_hex(e.sha256)) return bad(i, e.path, "sha256 must be 64 lower-case hex digits");
        bytes += e.size;
        if (bytes > limits.max_bundle_bytes)
          return bad(i, e.path, "the bundle exceeds the agent's limit of " + std::to_string(limits.max_bundle_bytes) +
                                    " bytes (--max-bundle-bytes)");
        files.insert(e.path);
        break;
      case EntryKind::Hardlink:
        if (!files.count(e.target)) return bad(i, e.path, "hard link to \"" + e.target + "\", not an earlier file");
        break;
      case EntryKind::Symlink:
        if (e.target.empty() || e.target.size() > 4096 || e.target.find('\0') != std::string::npos)
          return bad(i, e.path, "bad symlink target");
        break;
      case EntryKind::Fifo: break;
    }
    m.entries.push_back(std::move(e));
  }
  if (m.entries.empty()) return Error::make(ErrorKind::Generic, "manifest: no entries");
  return m;
}

}  // namespace envrun::ha
