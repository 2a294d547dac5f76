// classify_entry: tar names -> rootfs-relative parent + name + whiteout kind.
#include "bundle/registry_unpack.hpp"

#include <vector>

namespace envrun::registry {

Result<EntryPath> classify_entry(std::string_view raw) {
  auto bad = [&](const std::string& why) {
    return Error::make(ErrorKind::Config, "entry \"" + std::string(raw) + "\": " + why);
  };
  if (raw.empty()) return bad("empty name");
  if (raw.front() == '/') return bad("absolute path (would leave the rootfs)");
  std::vector<std::string_view> comps;
  for (size_t pos = 0; pos <= raw.size();) {
    size_t next = raw.find('/', pos);
    if (next == std::string_view::npos) next = raw.size();
    std::string_view c = raw.substr(pos, next - pos);
    if (c == "..") return bad("\"..\" component (would leave the rootfs)");
    if (!c.empty() && c != ".") comps.push_back(c);
    pos = next + 1;
  }
  EntryPath p;
  if (comps.empty()) {
    p.kind = EntryKind::Root;
    return p;
  }
  for (size_t i = 0; i + 1 < comps.size(); ++i) {
    if (comps[i].substr(0, 4) == ".wh.") return bad("whiteout name used as a directory");
    if (!p.parent.empty()) p.parent += '/';
    p.parent += comps[i];
  }
  std::string_view last = comps.back();
  if (last == ".wh..wh..opq") {
    p.kind = EntryKind::Opaque;
  } else if (last.substr(0, 4) == ".wh.") {
    std::string_view target = last.substr(4);
    if (target.empty() || target == "." || target == "..") return bad("whiteout without a valid name");
    p.kind = EntryKind::Whiteout;
    p.name = std::string(target);
  } else {
    p.name = std::string(last);
  }
  return p;
}

}  // namespace envrun::registry
