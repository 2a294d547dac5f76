// The bundle's migration policy: the `migration:` section of BUNDLE/envrun.yaml
// (envrun-yaml(5)). It tells the agent that runs the container (`envrun serve`) where to move
// it (`peer`) and on which events: a drain of the agent (`envrun drain`), a SIGTERM to the
// agent, memory or CPU pressure sustained for a while. The `billing:` section of the same
// file is parsed by billing/bundle_billing.hpp; each parser skips the other's section.
//
//   migration:
//     peer: 10.0.0.2:7070          # the agent to move to (HOST:PORT, as migrate --to)
//     psk_file: /etc/envrun/psk    # its key; default: the key the local agent serves with
//     on: [drain, sigterm, memory_pressure, cpu_pressure]   # default [drain]
//     memory_pressure_above: 80%   # memory in use / the container's memory limit
//     memory_psi_above: 10%        # PSI memory "some avg10" of the container's cgroup
//     cpu_pressure_above: 50%      # PSI cpu "some avg10" of the container's cgroup
//     for: 10s                     # sustained this long before it fires (default 10s)
//     retry_after: 60s             # after a failed migration (default 60s)
//     tcp_established: false       # migrate --tcp-established
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "kernel/result.hpp"

namespace envrun::bundle {

enum class MigrationEvent : unsigned { Drain = 1, Sigterm = 2, MemoryPressure = 4, CpuPressure = 8 };

struct MigrationPolicy {
  bool present = false;   // the file has a migration: section
  std::string peer;       // "" = none (drain --to may still give one)
  std::string psk_file;   // absolute (a relative one is resolved against the bundle); "" = the agent's
  unsigned on = unsigned(MigrationEvent::Drain);
  std::optional<double> memory_above;      // percent of the memory limit
  std::optional<double> memory_psi_above;  // percent (PSI some avg10)
  std::optional<double> cpu_psi_above;     // percent (PSI some avg10)
  int64_t for_ms = 10000;
  int64_t retry_ms = 60000;
  bool tcp_established = false;

  bool has(MigrationEvent e) const { return (on & unsigned(e)) != 0; }
};

// "drain", "sigterm", "memory_pressure", "cpu_pressure".
const char* migration_event_name(MigrationEvent e);

// Parses the text of an envrun.yaml; errors are "<source>:<line>:<col>: migration.<field>:
// <reason>". bundle_dir resolves a relative psk_file. A file without the section gives a
// policy with present == false.
Result<MigrationPolicy> parse_migration_policy(const std::string& text, const std::string& source,
                                               const std::string& bundle_dir);
// Reads BUNDLE_DIR/envrun.yaml; a bundle without the file has no policy.
Result<MigrationPolicy> read_migration_policy(const std::string& bundle_dir);

// Parse helpers, shared with the agent and its tests.
// "80%", "80", "12.5%": 0 < value <= 100; nullopt otherwise.
std::optional<double> parse_percent(const std::string& s);
// "10s", "500ms", "2m", "1h", "0s": milliseconds; nullopt when malformed.
std::optional<int64_t> parse_duration(const std::string& s);
// "HOST:PORT", "ADDR:PORT" (numeric IPv4) or "[IPv6]:PORT", as ha::parse_endpoint takes
// them (a host name is only checked for its form here: it is looked up when the container
// moves, on the agent's host); "" when good, the reason otherwise.
std::string check_peer_address(const std::string& s);

}  // namespace envrun::bundle
