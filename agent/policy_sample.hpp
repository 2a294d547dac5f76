// What the agent's policy thread reads about a container's pressure (agent/policy_watch.hpp):
//   memory in use: the memory cgroup's usage minus its inactive file cache, as a percentage
//     of its limit (v1 memory.usage_in_bytes / memory.stat total_inactive_file /
//     memory.limit_in_bytes; v2 memory.current / inactive_file / memory.max); none when the
//     container has no memory limit;
//   PSI: "some avg10" of memory.pressure and cpu.pressure in the container's cgroup2
//     directory (on the hybrid layout: the unified hierarchy, which tracks pressure of every
//     cgroup whatever controllers it has); none when the kernel has no PSI.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/cgroup.hpp"

namespace envrun::agent {

struct PressureReading {
  std::optional<double> memory_percent;  // of the limit
  uint64_t memory_limit = 0;             // bytes (0: none)
  std::optional<double> memory_psi;      // percent
  std::optional<double> cpu_psi;         // percent
};

// "some avg10=X ..." of a PSI file's text.
std::optional<double> parse_psi_some_avg10(std::string_view text);
// 100 * (usage - <inactive_key> of stat) / limit; nullopt for no limit (>= 2^62, "max").
std::optional<double> memory_use_percent(uint64_t usage, std::string_view stat, uint64_t limit,
                                         std::string_view inactive_key);
// The container at cgroup_path (state.json's, absolute within each hierarchy).
PressureReading read_pressure(const runtime::CgroupMounts& mounts, const std::string& cgroup_path);

}  // namespace envrun::agent
