// Finding the cgroup hierarchies: which v1 controllers are mounted where, where cgroup2 is,
// and therefore which layout (V1, Hybrid, V2) this host uses.
#include <set>

#include "kernel/fs.hpp"
#include "runtime/cgroup.hpp"

namespace envrun::runtime {

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
  auto oct = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && oct(s[i + 1]) && oct(s[i + 2]) && oct(s[i + 3])) {
      out += char((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(sep, i);
    if (j == std::string_view::npos) j = s.size();
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Controller names from a v1 mount's super options ("rw,cpu,cpuacct", "rw,name=systemd").
std::vector<std::string> v1_controllers(const std::string& super_opts) {
  static const std::set<std::string> generic = {"rw", "ro", "noprefix", "clone_children", "xattr",
                                                "cpuset_v2_mode", "favordynmods", "none", "all"};
  std::vector<std::string> out;
  for (auto& opt : split(super_opts, ',')) {
    if (opt.rfind("name=", 0) == 0) {
      out.push_back(opt == "name=systemd" ? "systemd" : opt);
    } else if (opt.find('=') == std::string::npos && !generic.count(opt)) {
      out.push_back(opt);
    }
  }
  return out;
}

struct MountLine {
  std::string root, mount_point, fstype, super_opts;
};

// "36 35 0:32 / /sys/fs/cgroup/memory rw,relatime shared:1 - cgroup cgroup rw,memory"
std::optional<MountLine> parse_line(std::string_view line) {
  auto fields = split(line, ' ');
  size_t dash = 0;
  for (size_t k = 6; k < fields.size(); ++k) {
    if (fields[k] == "-") {
      dash = k;
      break;
    }
  }
  if (fields.size() < 7 || dash == 0 || dash + 3 > fields.size()) return std::nullopt;
  MountLine m;
  m.root = unescape(fields[3]);
  m.mount_point = unescape(fields[4]);
  m.fstype = fields[dash + 1];
  m.super_opts = dash + 3 < fields.size() ? fields[dash + 3] : "";
  return m;
}

}  // namespace

Result<CgroupMounts> CgroupMounts::parse_mountinfo(std::string_view text) {
  CgroupMounts out;
  std::set<std::string> from_root;  // v1 controllers already taken from a mount of the hierarchy root
  int unified_score = -1;
  bool any_v1_controller = false;
  for (auto& line : split(text, '\n')) {
    auto m = parse_line(line);
    if (!m) continue;
    bool is_root = m->root == "/";
    if (m->fstype == "cgroup2") {
      // Prefer a mount of the hierarchy root, at /sys/fs/cgroup if there is one; then the first.
      int score = (is_root ? 2 : 0) + (m->mount_point == "/sys/fs/cgroup" ? 1 : 0);
      if (score > unified_score) {
        out.unified = m->mount_point;
        unified_score = score;
      }
    } else if (m->fstype == "cgroup") {
      for (auto& c : v1_controllers(m->super_opts)) {
        if (c != "systemd" && c.rfind("name=", 0) != 0) any_v1_controller = true;
        if (out.v1.count(c) && (from_root.count(c) || !is_root)) continue;
        out.v1[c] = m->mount_point;
        if (is_root) from_root.insert(c);
      }
    }
  }
  if (out.v1.empty() && out.unified.empty())
    return Error::make(ErrorKind::System, "no cgroup filesystem mounted");
  if (!any_v1_controller && !out.unified.empty()) out.layout = CgroupLayout::V2;
  else if (!out.unified.empty()) out.layout = CgroupLayout::Hybrid;
  else out.layout = CgroupLayout::V1;
  if (out.layout == CgroupLayout::V2) out.v1.clear();  // only named v1 hierarchies: unused
  return out;
}

Result<CgroupMounts> CgroupMounts::detect() {
  auto text = fs::read_file("/proc/self/mountinfo");
  if (!text) return std::move(text).error().with_context("cgroup: detect mounts");
  return parse_mountinfo(*text);
}

}  // namespace envrun::runtime
