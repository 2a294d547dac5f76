// validate_spec, linux section: namespaces, id mappings, the fields that need a
// namespace of their own (hostname, sysctl, timeOffsets), devices, paths, seccomp.
#include <set>

#include "bundle/spec_decode.hpp"
#include "bundle/spec_validate.hpp"

namespace envrun::bundle::detail {

namespace {

const oci::Namespace* find_ns(const oci::Linux* l, std::string_view type) {
  if (!l) return nullptr;
  for (const oci::Namespace& ns : l->namespaces)
    if (ns.type == type) return &ns;
  return nullptr;
}

std::string indexed(const std::string& base, size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

Result<void> validate_namespaces(const oci::Linux& l, const std::string& file) {
  std::set<std::string> seen;
  for (size_t i = 0; i < l.namespaces.size(); ++i) {
    const oci::Namespace& ns = l.namespaces[i];
    std::string at = indexed("linux.namespaces", i);
    if (ns.type.empty()) return invalid(file, at + ".type", "missing");
    if (!known_namespace(ns.type))
      return invalid(file, at + ".type", "unknown namespace type " + quote(ns.type));
    if (!seen.insert(ns.type).second)
      return invalid(file, at + ".type", "duplicate namespace " + quote(ns.type));
    if (!ns.path.empty() && ns.path[0] != '/')
      return invalid(file, at + ".path", "must be an absolute path, got " + quote(ns.path));
  }
  return ok();
}

// Mappings are needed exactly when envrun creates the user namespace itself.
Result<void> validate_mappings(const oci::Linux& l, const std::string& file) {
  const oci::Namespace* user = find_ns(&l, "user");
  bool creates = user && user->path.empty();
  std::pair<const char*, const std::vector<oci::IdMapping>*> kinds[] = {
      {"linux.uidMappings", &l.uid_mappings}, {"linux.gidMappings", &l.gid_mappings}};
  for (auto& [name, maps] : kinds) {
    if (creates && maps->empty())
      return invalid(file, name, "required when a user namespace is created");
    if (!creates && !maps->empty())
      return invalid(file, name,
                     user ? "must not be set when joining an existing user namespace"
                          : "set, but no user namespace is created (linux.namespaces has no "
                            "\"user\")");
    for (size_t i = 0; i < maps->size(); ++i)
      if ((*maps)[i].size == 0) return invalid(file, indexed(name, i) + ".size", "must not be 0");
  }
  return ok();
}

bool mapped(const std::vector<oci::IdMapping>& maps, uint32_t id) {
  for (const oci::IdMapping& m : maps)
    if (id >= m.container_id && id - m.container_id < m.size) return true;
  return false;
}

// In a user namespace envrun creates, the process's ids must exist (be mapped).
Result<void> validate_user_mapped(const oci::Spec& spec, const std::string& file) {
  const oci::Namespace* user = find_ns(&*spec.linux, "user");
  if (!user || !user->path.empty() || !spec.process) return ok();
  const oci::User& u = spec.process->user;
  const oci::Linux& l = *spec.linux;
  if (!mapped(l.uid_mappings, u.uid))
    return invalid(file, "process.user.uid", std::to_string(u.uid) + " is not mapped by linux.uidMappings");
  if (!mapped(l.gid_mappings, u.gid))
    return invalid(file, "process.user.gid", std::to_string(u.gid) + " is not mapped by linux.gidMappings");
  for (size_t i = 0; i < u.additional_gids.size(); ++i)
    if (!mapped(l.gid_mappings, u.additional_gids[i]))
      return invalid(file, indexed("process.user.additionalGids", i),
                     std::to_string(u.additional_gids[i]) + " is not mapped by linux.gidMappings");
  return ok();
}

// Which namespace a sysctl belongs to, or "" when it is not namespaced.
std::string sysctl_namespace(std::string key) {
  for (char& c : key)
    if (c == '/') c = '.';
  if (key.starts_with("kernel.shm") || key.starts_with("kernel.msg") || key == "kernel.sem" ||
      key.starts_with("fs.mqueue."))
    return "ipc";
  if (key.starts_with("net.")) return "network";
  if (key == "kernel.hostname" || key == "kernel.domainname") return "uts";
  return "";
}

Result<void> validate_sysctl(const oci::Linux& l, const std::string& file) {
  for (auto& [key, value] : l.sysctl) {
    std::string at = child_path("linux.sysctl", key);
    std::string ns = sysctl_namespace(key);
    if (ns.empty())
      return invalid(file, at,
                     "not a namespaced sysctl (allowed: kernel.shm*, kernel.msg*, kernel.sem, "
                     "fs.mqueue.*, net.*, kernel.hostname, kernel.domainname)");
    if (!find_ns(&l, ns)) return invalid(file, at, "requires a " + ns + " namespace");
  }
  return ok();
}

Result<void> validate_needs_namespaces(const oci::Spec& spec, const std::string& file) {
  const oci::Linux* l = spec.linux ? &*spec.linux : nullptr;
  if (!spec.hostname.empty() && !find_ns(l, "uts"))
    return invalid(file, "hostname", "requires a uts namespace");
  if (!spec.domainname.empty() && !find_ns(l, "uts"))
    return invalid(file, "domainname", "requires a uts namespace");
  if (l && (l->time_offsets_monotonic_secs || l->time_offsets_boottime_secs ||
            l->time_offsets_monotonic_nanosecs || l->time_offsets_boottime_nanosecs) &&
      !find_ns(l, "time"))
    return invalid(file, "linux.timeOffsets", "requires a time namespace");
  return ok();
}

Result<void> validate_devices(const oci::Linux& l, const std::string& file) {
  for (size_t i = 0; i < l.devices.size(); ++i) {
    const oci::Device& d = l.devices[i];
    std::string at = indexed("linux.devices", i);
    if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p")
      return invalid(file, at + ".type", "expected c, b, u or p, got " + quote(d.type));
    if (d.path.empty() || d.path[0] != '/')
      return invalid(file, at + ".path", "must be an absolute path, got " + quote(d.path));
  }
  if (!l.resources) return ok();
  for (size_t i = 0; i < l.resources->devices.size(); ++i) {
    const oci::DeviceCgroupRule& r = l.resources->devices[i];
    std::string at = indexed("linux.resources.devices", i);
    if (!r.type.empty() && r.type != "a" && r.type != "c" && r.type != "b")
      return invalid(file, at + ".type", "expected a, c or b, got " + quote(r.type));
    if (r.access.find_first_not_of("rwm") != std::string::npos)
      return invalid(file, at + ".access", "expected letters from \"rwm\", got " + quote(r.access));
  }
  return ok();
}

Result<void> validate_paths(const oci::Linux& l, const std::string& file) {
  static const std::set<std::string> propagations = {
      "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable"};
  if (!l.rootfs_propagation.empty() && !propagations.count(l.rootfs_propagation))
    return invalid(file, "linux.rootfsPropagation",
                   "unknown propagation " + quote(l.rootfs_propagation));
  std::pair<const char*, const std::vector<std::string>*> lists[] = {
      {"linux.maskedPaths", &l.masked_paths}, {"linux.readonlyPaths", &l.readonly_paths}};
  for (auto& [name, paths] : lists)
    for (size_t i = 0; i < paths->size(); ++i)
      if ((*paths)[i].empty() || (*paths)[i][0] != '/')
        return invalid(file, indexed(name, i),
                       "must be an absolute path, got " + quote((*paths)[i]));
  if (l.personality && l.personality->domain != "LINUX" && l.personality->domain != "LINUX32")
    return invalid(file, "linux.personality.domain",
                   "expected LINUX or LINUX32, got " + quote(l.personality->domain));
  return ok();
}

}  // namespace

Result<void> validate_seccomp(const oci::Seccomp& s, const std::string& file) {
  const std::string base = "linux.seccomp";
  if (s.default_action.empty()) return invalid(file, base + ".defaultAction", "missing");
  if (!known_seccomp_action(s.default_action))
    return invalid(file, base + ".defaultAction", "unknown action " + quote(s.default_action));
  if (s.default_action == "SCMP_ACT_NOTIFY")
    return invalid(file, base + ".defaultAction", "SCMP_ACT_NOTIFY cannot be the default action");
  for (size_t i = 0; i < s.architectures.size(); ++i)
    if (!known_seccomp_arch(s.architectures[i]))
      return invalid(file, indexed(base + ".architectures", i),
                     "unknown architecture " + quote(s.architectures[i]));
  for (size_t i = 0; i < s.flags.size(); ++i)
    if (!known_seccomp_flag(s.flags[i]))
      return invalid(file, indexed(base + ".flags", i), "unknown flag " + quote(s.flags[i]));
  for (size_t i = 0; i < s.syscalls.size(); ++i) {
    const oci::SeccompSyscall& sc = s.syscalls[i];
    std::string at = indexed(base + ".syscalls", i);
    if (sc.names.empty()) return invalid(file, at + ".names", "must not be empty");
    if (sc.action.empty()) return invalid(file, at + ".action", "missing");
    if (!known_seccomp_action(sc.action))
      return invalid(file, at + ".action", "unknown action " + quote(sc.action));
    if (sc.action == "SCMP_ACT_NOTIFY" && s.listener_path.empty())
      return invalid(file, base + ".listenerPath", "required when SCMP_ACT_NOTIFY is used");
    for (size_t j = 0; j < sc.args.size(); ++j) {
      const oci::SeccompArg& a = sc.args[j];
      std::string arg = indexed(at + ".args", j);
      if (a.index > 5)
        return invalid(file, arg + ".index", "must be between 0 and 5, got " + std::to_string(a.index));
      if (!known_seccomp_op(a.op)) return invalid(file, arg + ".op", "unknown operator " + quote(a.op));
    }
  }
  return ok();
}

Result<void> validate_linux(const oci::Spec& spec, const std::string& file) {
  if (spec.linux) {
    ENVRUN_CHECK(validate_namespaces(*spec.linux, file));
    ENVRUN_CHECK(validate_mappings(*spec.linux, file));
    ENVRUN_CHECK(validate_user_mapped(spec, file));
  }
  ENVRUN_CHECK(validate_needs_namespaces(spec, file));
  if (!spec.linux) return ok();
  const oci::Linux& l = *spec.linux;
  ENVRUN_CHECK(validate_sysctl(l, file));
  ENVRUN_CHECK(validate_devices(l, file));
  ENVRUN_CHECK(validate_paths(l, file));
  if (l.seccomp) ENVRUN_CHECK(validate_seccomp(*l.seccomp, file));
  return ok();
}

}  // namespace envrun::bundle::detail
