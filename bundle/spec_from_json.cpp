// JSON document -> oci::Spec: the field names of the OCI runtime-spec 1.2 (plus envrun's
// own "envrun" section), each read with its expected type. Unknown fields are ignored;
// semantic checks live in spec_validate*.cpp.
#include <utility>

#include "bundle/spec_decode.hpp"

namespace envrun::bundle::detail {

namespace {

using nlohmann::json;

void read_id_mappings(Decoder& d, const Node& n, std::vector<oci::IdMapping>& out) {
  d.each(n, out, [&](const Node& m, oci::IdMapping& map) {
    d.read(m["containerID"], map.container_id);
    d.read(m["hostID"], map.host_id);
    d.read(m["size"], map.size);
  });
}

void read_user(Decoder& d, const Node& n, oci::User& u) {
  if (!d.object(n)) return;
  d.read(n["uid"], u.uid);
  d.read(n["gid"], u.gid);
  d.read(n["umask"], u.umask);
  d.read(n["additionalGids"], u.additional_gids);
  d.read(n["username"], u.username);
}

void read_capabilities(Decoder& d, const Node& n, std::optional<oci::Capabilities>& out) {
  if (!d.object(n)) return;
  oci::Capabilities& c = out.emplace();
  d.read(n["bounding"], c.bounding);
  d.read(n["effective"], c.effective);
  d.read(n["inheritable"], c.inheritable);
  d.read(n["permitted"], c.permitted);
  d.read(n["ambient"], c.ambient);
}

void read_scheduling(Decoder& d, const Node& n, oci::Process& p) {
  if (Node s = n["scheduler"]; d.object(s)) {
    oci::Scheduler& sch = p.scheduler.emplace();
    d.read(s["policy"], sch.policy);
    d.read(s["nice"], sch.nice);
    d.read(s["priority"], sch.priority);
    d.read(s["flags"], sch.flags);
    d.read(s["runtime"], sch.runtime);
    d.read(s["deadline"], sch.deadline);
    d.read(s["period"], sch.period);
  }
  if (Node io = n["ioPriority"]; d.object(io)) {
    oci::IoPriority& prio = p.io_priority.emplace();
    d.read(io["class"], prio.io_class);
    d.read(io["priority"], prio.priority);
  }
  if (Node a = n["execCPUAffinity"]; d.object(a)) {
    oci::ExecCpuAffinity& aff = p.exec_cpu_affinity.emplace();
    d.read(a["initial"], aff.initial);
    d.read(a["final"], aff.final);
  }
}

void read_process(Decoder& d, const Node& n, std::optional<oci::Process>& out) {
  if (!d.object(n)) return;
  oci::Process& p = out.emplace();
  p.cwd.clear();  // required by the spec: absence is reported by validation
  d.read(n["terminal"], p.terminal);
  if (Node cs = n["consoleSize"]; d.object(cs)) {
    oci::ConsoleSize& size = p.console_size.emplace();
    d.read(cs["height"], size.height);
    d.read(cs["width"], size.width);
  }
  read_user(d, n["user"], p.user);
  d.read(n["args"], p.args);
  d.read(n["env"], p.env);
  d.read(n["cwd"], p.cwd);
  read_capabilities(d, n["capabilities"], p.capabilities);
  d.each(n["rlimits"], p.rlimits, [&](const Node& r, oci::Rlimit& limit) {
    d.read(r["type"], limit.type);
    d.read(r["hard"], limit.hard);
    d.read(r["soft"], limit.soft);
  });
  d.read(n["noNewPrivileges"], p.no_new_privileges);
  d.read(n["oomScoreAdj"], p.oom_score_adj);
  d.read(n["apparmorProfile"], p.apparmor_profile);
  d.read(n["selinuxLabel"], p.selinux_label);
  read_scheduling(d, n, p);
}

void read_mounts(Decoder& d, const Node& n, std::vector<oci::Mount>& out) {
  d.each(n, out, [&](const Node& m, oci::Mount& mount) {
    d.read(m["destination"], mount.destination);
    d.read(m["type"], mount.type);
    d.read(m["source"], mount.source);
    d.read(m["options"], mount.options);
    read_id_mappings(d, m["uidMappings"], mount.uid_mappings);
    read_id_mappings(d, m["gidMappings"], mount.gid_mappings);
    for (const char* key : {"uidMappings", "gidMappings"})
      if (Node maps = m[key]; maps && maps.v->is_array())
        for (const json& entry : *maps.v) mount.uid_mappings_raw.push_back(
              entry.dump(-1, ' ', false, json::error_handler_t::replace));
  });
}

void read_hooks(Decoder& d, const Node& n, oci::Hooks& hooks) {
  if (!d.object(n)) return;
  oci::Hooks::each_phase(hooks, [&](const char* name, std::vector<oci::Hook>& list) {
    d.each(n[name], list, [&](const Node& h, oci::Hook& hook) {
      d.read(h["path"], hook.path);
      d.read(h["args"], hook.args);
      d.read(h["env"], hook.env);
      d.read(h["timeout"], hook.timeout);
    });
  });
}

void read_devices(Decoder& d, const Node& n, std::vector<oci::Device>& out) {
  d.each(n, out, [&](const Node& dev, oci::Device& device) {
    d.read(dev["type"], device.type);
    d.read(dev["path"], device.path);
    d.read(dev["major"], device.major);
    d.read(dev["minor"], device.minor);
    d.read(dev["fileMode"], device.file_mode);
    d.read(dev["uid"], device.uid);
    d.read(dev["gid"], device.gid);
  });
}

void read_seccomp(Decoder& d, const Node& n, std::optional<oci::Seccomp>& out) {
  if (!d.object(n)) return;
  oci::Seccomp& s = out.emplace();
  d.read(n["defaultAction"], s.default_action);
  d.read(n["defaultErrnoRet"], s.default_errno_ret);
  d.read(n["architectures"], s.architectures);
  d.read(n["flags"], s.flags);
  d.read(n["listenerPath"], s.listener_path);
  d.read(n["listenerMetadata"], s.listener_metadata);
  d.each(n["syscalls"], s.syscalls, [&](const Node& sc, oci::SeccompSyscall& call) {
    d.read(sc["names"], call.names);
    d.read(sc["action"], call.action);
    d.read(sc["errnoRet"], call.errno_ret);
    d.each(sc["args"], call.args, [&](const Node& a, oci::SeccompArg& arg) {
      d.read(a["index"], arg.index);
      d.read(a["value"], arg.value);
      d.read(a["valueTwo"], arg.value_two);
      d.read(a["op"], arg.op);
    });
  });
}

void read_time_offsets(Decoder& d, const Node& n, oci::Linux& l) {
  if (!d.object(n)) return;
  if (Node m = n["monotonic"]; d.object(m)) {
    d.read(m["secs"], l.time_offsets_monotonic_secs);
    d.read(m["nanosecs"], l.time_offsets_monotonic_nanosecs);
  }
  if (Node b = n["boottime"]; d.object(b)) {
    d.read(b["secs"], l.time_offsets_boottime_secs);
    d.read(b["nanosecs"], l.time_offsets_boottime_nanosecs);
  }
}

void read_net_devices(Decoder& d, const Node& n, std::map<std::string, std::string>& out) {
  if (!d.object(n)) return;
  for (auto& [host_name, value] : n.v->items()) {
    Node dev = n[host_name];
    std::string& name = out[host_name];
    if (d.object(dev)) d.read(dev["name"], name);
  }
}


void read_linux(Decoder& d, const Node& n, std::optional<oci::Linux>& out) {
  if (!d.object(n)) return;
  oci::Linux& l = out.emplace();
  d.each(n["namespaces"], l.namespaces, [&](const Node& ns, oci::Namespace& space) {
    d.read(ns["type"], space.type);
    d.read(ns["path"], space.path);
  });
  read_id_mappings(d, n["uidMappings"], l.uid_mappings);
  read_id_mappings(d, n["gidMappings"], l.gid_mappings);
  read_devices(d, n["devices"], l.devices);
  read_resources(d, n["resources"], l.resources);
  d.read(n["cgroupsPath"], l.cgroups_path);
  d.read(n["sysctl"], l.sysctl);
  read_seccomp(d, n["seccomp"], l.seccomp);
  d.read(n["rootfsPropagation"], l.rootfs_propagation);
  d.read(n["maskedPaths"], l.masked_paths);
  d.read(n["readonlyPaths"], l.readonly_paths);
  d.read(n["mountLabel"], l.mount_label);
  read_time_offsets(d, n["timeOffsets"], l);
  if (Node p = n["personality"]; d.object(p)) {
    oci::Personality& pers = l.personality.emplace();
    d.read(p["domain"], pers.domain);
    d.read(p["flags"], pers.flags);
  }
  read_net_devices(d, n["netDevices"], l.net_devices);
}

void read_spec(Decoder& d, const Node& n, oci::Spec& s) {
  if (!d.object(n)) return;
  d.read(n["ociVersion"], s.oci_version);
  s.root.path.clear();  // required by the spec: absence is reported by validation
  if (Node r = n["root"]; d.object(r)) {
    d.read(r["path"], s.root.path);
    d.read(r["readonly"], s.root.readonly);
  }
  read_process(d, n["process"], s.process);
  d.read(n["hostname"], s.hostname);
  d.read(n["domainname"], s.domainname);
  read_mounts(d, n["mounts"], s.mounts);
  read_hooks(d, n["hooks"], s.hooks);
  d.read(n["annotations"], s.annotations);
  read_linux(d, n["linux"], s.linux);
  if (Node e = n["envrun"]; d.object(e)) {
    d.read(e["isolation"], s.envrun.isolation);
    d.read(e["interceptOptional"], s.envrun.intercept_optional);
  }
}

}  // namespace

Result<oci::Spec> spec_from_json(const json& doc, const std::string& filename,
                                 const SourceMap* sources, TextFixups* fixups) {
  Decoder d(filename, sources, fixups);
  Node root = d.root(doc);
  if (doc.is_null()) {
    d.fail(root, "empty document (expected an object)");
    return d.take_error();
  }
  if (!doc.is_object()) {
    d.fail(root, std::string("expected an object at the top level, got ") + doc.type_name());
    return d.take_error();
  }
  oci::Spec spec;
  read_spec(d, root, spec);
  if (d.failed()) return d.take_error();
  return spec;
}

}  // namespace envrun::bundle::detail
