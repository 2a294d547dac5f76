// The config.json written by `envrun spec`: the same starting point `runc spec` gives
// (an interactive sh in a read-only rootfs with a minimal capability set and the usual
// pseudo filesystems), and its rootless variant (a user namespace mapping the caller,
// no network namespace, /sys bind-mounted from the host, no cgroup resources).
#include <string>
#include <vector>

#include "bundle/spec_parser.hpp"

namespace envrun::bundle {

namespace {

using nlohmann::json;

json mount(const char* destination, const char* type, const char* source,
           std::vector<std::string> options) {
  json m = {{"destination", destination}, {"type", type}, {"source", source}};
  if (!options.empty()) m["options"] = options;
  return m;
}

json default_mounts() {
  return json::array({
      mount("/proc", "proc", "proc", {}),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount("/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
  });
}

json default_process() {
  const std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  return {
      {"terminal", true},
      {"user", {{"uid", 0}, {"gid", 0}}},
      {"args", {"sh"}},
      {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
      {"cwd", "/"},
      {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
      {"noNewPrivileges", true},
  };
}

json default_linux() {
  json namespaces = json::array();
  for (const char* type : {"pid", "network", "ipc", "uts", "mount", "cgroup"})
    namespaces.push_back({{"type", type}});
  return {
      {"resources", {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}}},
      {"namespaces", namespaces},
      {"maskedPaths",
       {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
        "/sys/devices/virtual/powercap", "/proc/scsi"}},
      {"readonlyPaths",
       {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
  };
}

// Without a network namespace of its own, an unprivileged user cannot mount sysfs: drop
// everything under /sys and bind the host's read-only instead. uid=/gid= mount options
// would name ids that are not mapped.
void make_rootless(json& spec, uint32_t uid, uint32_t gid) {
  json namespaces = json::array();
  for (const json& ns : spec["linux"]["namespaces"])
    if (ns["type"] != "network" && ns["type"] != "user") namespaces.push_back(ns);
  namespaces.push_back({{"type", "user"}});
  spec["linux"]["namespaces"] = namespaces;
  spec["linux"]["uidMappings"] = json::array({{{"containerID", 0}, {"hostID", uid}, {"size", 1}}});
  spec["linux"]["gidMappings"] = json::array({{{"containerID", 0}, {"hostID", gid}, {"size", 1}}});
  spec["linux"].erase("resources");

  json mounts = json::array();
  for (json m : spec["mounts"]) {
    std::string dest = m["destination"];
    if (dest == "/sys" || dest.starts_with("/sys/")) continue;
    if (m.contains("options")) {
      json kept = json::array();
      for (const json& o : m["options"]) {
        std::string opt = o;
        if (!opt.starts_with("uid=") && !opt.starts_with("gid=")) kept.push_back(opt);
      }
      m["options"] = kept;
    }
    mounts.push_back(m);
  }
  mounts.push_back(mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
  spec["mounts"] = mounts;
}

}  // namespace

json default_spec_json(bool rootless, uint32_t uid, uint32_t gid) {
  json spec = {
      {"ociVersion", "1.2.0"},
      {"process", default_process()},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "envrun"},
      {"mounts", default_mounts()},
      {"linux", default_linux()},
  };
  if (rootless) make_rootless(spec, uid, gid);
  return spec;
}

}  // namespace envrun::bundle
