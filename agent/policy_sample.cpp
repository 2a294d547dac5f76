// read_pressure and its parsers (policy_sample.hpp).
#include "agent/policy_sample.hpp"

#include <cstdlib>

#include "kernel/fs.hpp"

namespace envrun::agent {

namespace {

constexpr uint64_t kNoLimit = 1ull << 62;

std::optional<uint64_t> read_number(const std::string& path) {
  auto t = fs::read_file(path);
  if (!t || t->empty()) return std::nullopt;
  if (t->rfind("max", 0) == 0) return UINT64_MAX;
  char* end = nullptr;
  unsigned long long v = std::strtoull(t->c_str(), &end, 10);
  if (end == t->c_str()) return std::nullopt;
  return uint64_t(v);
}

// The value of "key N" in a memory.stat text; 0 when absent.
uint64_t stat_value(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ')
      return std::strtoull(std::string(line.substr(key.size() + 1)).c_str(), nullptr, 10);
  }
  return 0;
}

std::optional<double> read_psi(const std::string& path) {
  auto t = fs::read_file(path);
  if (!t) return std::nullopt;
  return parse_psi_some_avg10(*t);
}

}  // namespace

std::optional<double> parse_psi_some_avg10(std::string_view text) {
  if (text.substr(0, 5) != "some ") return std::nullopt;
  auto line = text.substr(0, text.find('\n'));
  auto at = line.find("avg10=");
  if (at == std::string_view::npos) return std::nullopt;
  std::string num(line.substr(at + 6, line.find(' ', at) - at - 6));
  char* end = nullptr;
  double v = std::strtod(num.c_str(), &end);
  if (end == num.c_str()) return std::nullopt;
  return v;
}

std::optional<double> memory_use_percent(uint64_t usage, std::string_view stat, uint64_t limit,
                                         std::string_view inactive_key) {
  if (limit == 0 || limit >= kNoLimit) return std::nullopt;
  uint64_t cache = stat_value(stat, inactive_key);
  uint64_t used = usage > cache ? usage - cache : 0;
  return 100.0 * double(used) / double(limit);
}

PressureReading read_pressure(const runtime::CgroupMounts& mounts, const std::string& cgroup_path) {
  PressureReading r;
  std::string mem_dir, key;
  std::optional<uint64_t> usage, limit;
  if (auto it = mounts.v1.find("memory"); it != mounts.v1.end()) {
    mem_dir = it->second + cgroup_path;
    usage = read_number(mem_dir + "/memory.usage_in_bytes");
    limit = read_number(mem_dir + "/memory.limit_in_bytes");
    key = "total_inactive_file";
  } else if (!mounts.unified.empty()) {
    mem_dir = mounts.unified + cgroup_path;
    usage = read_number(mem_dir + "/memory.current");
    limit = read_number(mem_dir + "/memory.max");
    key = "inactive_file";
  }
  if (usage && limit) {
    auto stat = fs::read_file(mem_dir + "/memory.stat");
    r.memory_percent = memory_use_percent(*usage, stat ? *stat : "", *limit, key);
    if (r.memory_percent) r.memory_limit = *limit;
  }
  if (!mounts.unified.empty()) {
    std::string dir = mounts.unified + cgroup_path;
    r.memory_psi = read_psi(dir + "/memory.pressure");
    r.cpu_psi = read_psi(dir + "/cpu.pressure");
  }
  return r;
}

}  // namespace envrun::agent
