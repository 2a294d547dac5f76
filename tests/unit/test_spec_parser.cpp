// bundle/spec_parser: config.json / config.yaml -> oci::Spec, validation, default spec.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

#include "bundle/spec_parser.hpp"
#include "kernel/fs.hpp"

using namespace envrun;
using envrun::bundle::load_spec;
using envrun::bundle::parse_spec_json;
using envrun::bundle::parse_spec_yaml;
using nlohmann::json;

namespace {

// A bundle directory under /tmp with an empty rootfs/, removed afterwards.
struct TempBundle {
  std::string dir;
  TempBundle() {
    char tmpl[] = "/tmp/envrun-spec-test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    REQUIRE(fs::mkdir_p(dir + "/rootfs"));
  }
  ~TempBundle() { (void)fs::remove_tree(dir); }
  void write(const std::string& name, const std::string& text) const {
    REQUIRE(fs::write_file(dir + "/" + name, text, O_CREAT | O_TRUNC));
  }
  // load_spec's error message for this config.json (the test fails if it loads).
  std::string error_for(const json& doc) const {
    write("config.json", doc.dump(2));
    auto r = load_spec(dir);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::Config);
    return r.error().message;
  }
};

json minimal() {
  return json::parse(R"({
    "ociVersion": "1.2.0",
    "root": {"path": "rootfs"},
    "process": {"args": ["sh"], "cwd": "/"},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
  })");
}

const char* kRichJson = R"({
  "ociVersion": "1.2.0",
  "unknownTopLevel": {"ignored": [1, 2, 3]},
  "root": {"path": "rootfs", "readonly": true},
  "process": {
    "terminal": true,
    "consoleSize": {"height": 40, "width": 120},
    "user": {"uid": 1000, "gid": 1001, "umask": 18, "additionalGids": [5, 6], "username": "app"},
    "args": ["/bin/server", "--port", "8080"],
    "env": ["PATH=/usr/bin:/bin", "MODE=prod"],
    "cwd": "/srv",
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"],
      "inheritable": [], "permitted": ["CAP_CHOWN", "CAP_KILL"], "ambient": ["CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
                {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}],
    "noNewPrivileges": true,
    "oomScoreAdj": -500,
    "apparmorProfile": "unconfined",
    "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0",
    "scheduler": {"policy": "SCHED_BATCH", "nice": 5},
    "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4}
  },
  "hostname": "web1",
  "domainname": "example.org",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/data", "type": "bind", "source": "/var/data", "options": ["rbind", "ro"],
     "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
     "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
  ],
  "hooks": {
    "prestart": [{"path": "/usr/bin/setup-net", "args": ["setup-net", "up"], "env": ["A=1"], "timeout": 5}],
    "createRuntime": [{"path": "/bin/true"}],
    "poststop": [{"path": "/bin/cleanup", "timeout": 30}]
  },
  "annotations": {"org.example.tier": "frontend", "owner": "team-a"},
  "envrun": {"isolation": "both"},
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/web"},
                   {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"},
                   {"type": "cgroup"}, {"type": "time"}],
    "uidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 300000, "size": 2000}],
    "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229,
                 "fileMode": 438, "uid": 0, "gid": 0}],
    "resources": {
      "devices": [{"allow": false, "access": "rwm"},
                  {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
      "memory": {"limit": 536870912, "reservation": 268435456, "swap": -1, "kernel": 0,
                 "kernelTCP": 0, "swappiness": 10, "disableOOMKiller": false,
                 "useHierarchy": true, "checkBeforeUpdate": true},
      "cpu": {"shares": 512, "quota": 50000, "burst": 10000, "period": 100000,
              "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "0-1", "mems": "0", "idle": 0},
      "pids": {"limit": 256},
      "blockIO": {"weight": 300, "leafWeight": 200,
                  "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 400}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                  "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
                  "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
                  "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 200}]},
      "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
      "unified": {"memory.high": "400000000"}
    },
    "cgroupsPath": "/envrun/web1",
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "68719476736"},
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
      "flags": ["SECCOMP_FILTER_FLAG_LOG"],
      "listenerPath": "/run/seccomp.sock", "listenerMetadata": "web1",
      "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
      ]
    },
    "rootfsPropagation": "rslave",
    "maskedPaths": ["/proc/kcore", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys"],
    "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0",
    "timeOffsets": {"monotonic": {"secs": 3600}, "boottime": {"secs": -60, "nanosecs": 5}}
  }
})";

// The same document in YAML: plain numbers, quoted strings, an octal file mode, an anchor.
const char* kRichYaml = R"(ociVersion: "1.2.0"
unknownTopLevel: {ignored: [1, 2, 3]}
root: {path: rootfs, readonly: true}
process:
  terminal: true
  consoleSize: {height: 40, width: 120}
  user: {uid: 1000, gid: 1001, umask: 0o22, additionalGids: [5, 6], username: app}
  args: [/bin/server, --port, "8080"]
  env: [PATH=/usr/bin:/bin, MODE=prod]
  cwd: /srv
  capabilities:
    bounding: &both [CAP_CHOWN, CAP_KILL]
    effective: [CAP_KILL]
    inheritable: []
    permitted: *both
    ambient: [CAP_NET_BIND_SERVICE]
  rlimits:
    - {type: RLIMIT_NOFILE, hard: 4096, soft: 1024}
    - {type: RLIMIT_CORE, hard: 0, soft: 0}
  noNewPrivileges: true
  oomScoreAdj: -500
  apparmorProfile: unconfined
  selinuxLabel: "system_u:system_r:svirt_lxc_net_t:s0"
  scheduler: {policy: SCHED_BATCH, nice: 5}
  ioPriority: {class: IOPRIO_CLASS_BE, priority: 4}
hostname: web1
domainname: example.org
mounts:
  - {destination: /proc, type: proc, source: proc}
  - {destination: /data, type: bind, source: /var/data, options: [rbind, ro],
     uidMappings: &idmap [{containerID: 0, hostID: 100000, size: 65536}], gidMappings: *idmap}
hooks:
  prestart:
    - {path: /usr/bin/setup-net, args: [setup-net, up], env: [A=1], timeout: 5}
  createRuntime: [{path: /bin/true}]
  poststop: [{path: /bin/cleanup, timeout: 30}]
annotations: {org.example.tier: frontend, owner: team-a}
envrun: {isolation: both}
linux:
  namespaces:
    - type: pid
    - {type: network, path: /var/run/netns/web}
    - {type: ipc}
    - {type: uts}
    - {type: mount}
    - {type: user}
    - {type: cgroup}
    - {type: time}
  uidMappings: [{containerID: 0, hostID: 200000, size: 65536}]
  gidMappings: [{containerID: 0, hostID: 300000, size: 2000}]
  devices:
    - {type: c, path: /dev/fuse, major: 10, minor: 229, fileMode: 0666, uid: 0, gid: 0}
  resources:
    devices:
      - {allow: false, access: rwm}
      - {allow: true, type: c, major: 10, minor: 229, access: rw}
    memory: {limit: 536870912, reservation: 268435456, swap: -1, kernel: 0, kernelTCP: 0,
             swappiness: 10, disableOOMKiller: false, useHierarchy: true, checkBeforeUpdate: true}
    cpu: {shares: 512, quota: 50000, burst: 10000, period: 100000, realtimeRuntime: 0,
          realtimePeriod: 0, cpus: 0-1, mems: 0, idle: 0}
    pids: {limit: 256}
    blockIO:
      weight: 300
      leafWeight: 200
      weightDevice: [{major: 8, minor: 0, weight: 500, leafWeight: 400}]
      throttleReadBpsDevice: [{major: 8, minor: 0, rate: 1048576}]
      throttleWriteBpsDevice: [{major: 8, minor: 0, rate: 2097152}]
      throttleReadIOPSDevice: [{major: 8, minor: 16, rate: 100}]
      throttleWriteIOPSDevice: [{major: 8, minor: 16, rate: 200}]
    hugepageLimits: [{pageSize: 2MB, limit: 209715200}]
    unified: {memory.high: 400000000}
  cgroupsPath: /envrun/web1
  sysctl: {net.ipv4.ip_forward: 1, kernel.shmmax: "68719476736"}
  seccomp:
    {defaultAction: SCMP_ACT_ERRNO, defaultErrnoRet: 1, flags: [SECCOMP_FILTER_FLAG_LOG],
     architectures: [SCMP_ARCH_X86_64, SCMP_ARCH_X86], listenerPath: /run/seccomp.sock,
     listenerMetadata: web1,
     syscalls: [{names: [read, write], action: SCMP_ACT_ALLOW},
                {names: [personality], action: SCMP_ACT_ALLOW,
                 args: [{index: 0, value: 8, valueTwo: 0, op: SCMP_CMP_EQ}]},
                {names: [mkdir], action: SCMP_ACT_ERRNO, errnoRet: 13}]}
  rootfsPropagation: rslave
  maskedPaths: [/proc/kcore, /sys/firmware]
  readonlyPaths: [/proc/sys]
  mountLabel: "system_u:object_r:svirt_sandbox_file_t:s0"
  timeOffsets: {monotonic: {secs: 3600}, boottime: {secs: -60, nanosecs: 5}}
)";

void check_rich(const oci::Spec& s) {
  CHECK(s.oci_version == "1.2.0");
  CHECK(s.root.path == "rootfs");
  CHECK(s.root.readonly);
  REQUIRE(s.process);
  const oci::Process& p = *s.process;
  CHECK(p.terminal);
  REQUIRE(p.console_size);
  CHECK(p.console_size->height == 40);
  CHECK(p.console_size->width == 120);
  CHECK(p.user.uid == 1000);
  CHECK(p.user.gid == 1001);
  CHECK(p.user.umask == std::optional<uint32_t>(18));
  CHECK(p.user.additional_gids == std::vector<uint32_t>{5, 6});
  CHECK(p.user.username == "app");
  CHECK(p.args == std::vector<std::string>{"/bin/server", "--port", "8080"});
  CHECK(p.env == std::vector<std::string>{"PATH=/usr/bin:/bin", "MODE=prod"});
  CHECK(p.cwd == "/srv");
  REQUIRE(p.capabilities);
  CHECK(p.capabilities->bounding == std::vector<std::string>{"CAP_CHOWN", "CAP_KILL"});
  CHECK(p.capabilities->effective == std::vector<std::string>{"CAP_KILL"});
  CHECK(p.capabilities->inheritable.empty());
  CHECK(p.capabilities->permitted == std::vector<std::string>{"CAP_CHOWN", "CAP_KILL"});
  CHECK(p.capabilities->ambient == std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  REQUIRE(p.rlimits.size() == 2);
  CHECK(p.rlimits[0].type == "RLIMIT_NOFILE");
  CHECK(p.rlimits[0].hard == 4096);
  CHECK(p.rlimits[0].soft == 1024);
  CHECK(p.no_new_privileges);
  CHECK(p.oom_score_adj == std::optional<int>(-500));
  CHECK(p.apparmor_profile == "unconfined");
  CHECK(p.selinux_label == "system_u:system_r:svirt_lxc_net_t:s0");
  REQUIRE(p.scheduler);
  CHECK(p.scheduler->policy == "SCHED_BATCH");
  CHECK(p.scheduler->nice == std::optional<int32_t>(5));
  REQUIRE(p.io_priority);
  CHECK(p.io_priority->io_class == "IOPRIO_CLASS_BE");
  CHECK(p.io_priority->priority == 4);

  CHECK(s.hostname == "web1");
  CHECK(s.domainname == "example.org");
  REQUIRE(s.mounts.size() == 2);
  CHECK(s.mounts[0].destination == "/proc");
  CHECK(s.mounts[0].options.empty());
  CHECK(s.mounts[1].source == "/var/data");
  CHECK(s.mounts[1].options == std::vector<std::string>{"rbind", "ro"});
  REQUIRE(s.mounts[1].uid_mappings.size() == 1);
  CHECK(s.mounts[1].uid_mappings[0].host_id == 100000);
  CHECK(s.mounts[1].gid_mappings[0].size == 65536);
  CHECK(s.mounts[1].uid_mappings_raw.size() == 2);

  REQUIRE(s.hooks.prestart.size() == 1);
  CHECK(s.hooks.prestart[0].path == "/usr/bin/setup-net");
  CHECK(s.hooks.prestart[0].args == std::vector<std::string>{"setup-net", "up"});
  CHECK(s.hooks.prestart[0].env == std::vector<std::string>{"A=1"});
  CHECK(s.hooks.prestart[0].timeout == std::optional<int>(5));
  REQUIRE(s.hooks.create_runtime.size() == 1);
  CHECK_FALSE(s.hooks.create_runtime[0].timeout);
  CHECK(s.hooks.create_container.empty());
  REQUIRE(s.hooks.poststop.size() == 1);
  CHECK(s.hooks.poststop[0].timeout == std::optional<int>(30));
  CHECK(s.annotations.at("org.example.tier") == "frontend");
  CHECK(s.annotations.at("owner") == "team-a");
  CHECK(s.envrun.isolation == "both");

  REQUIRE(s.linux);
  const oci::Linux& l = *s.linux;
  REQUIRE(l.namespaces.size() == 8);
  CHECK(l.namespaces[1].type == "network");
  CHECK(l.namespaces[1].path == "/var/run/netns/web");
  CHECK(l.namespaces[7].type == "time");
  REQUIRE(l.uid_mappings.size() == 1);
  CHECK(l.uid_mappings[0].host_id == 200000);
  CHECK(l.uid_mappings[0].size == 65536);
  REQUIRE(l.gid_mappings.size() == 1);
  CHECK(l.gid_mappings[0].host_id == 300000);
  CHECK(l.gid_mappings[0].size == 2000);
  REQUIRE(l.devices.size() == 1);
  CHECK(l.devices[0].path == "/dev/fuse");
  CHECK(l.devices[0].major == 10);
  CHECK(l.devices[0].minor == 229);
  CHECK(l.devices[0].file_mode == std::optional<uint32_t>(0666));
  CHECK(l.devices[0].uid == std::optional<uint32_t>(0));

  REQUIRE(l.resources);
  const oci::Resources& r = *l.resources;
  REQUIRE(r.devices.size() == 2);
  CHECK_FALSE(r.devices[0].allow);
  CHECK_FALSE(r.devices[0].major);
  CHECK(r.devices[0].access == "rwm");
  CHECK(r.devices[1].allow);
  CHECK(r.devices[1].type == "c");
  CHECK(r.devices[1].major == std::optional<int64_t>(10));
  REQUIRE(r.memory);
  CHECK(r.memory->limit == std::optional<int64_t>(536870912));
  CHECK(r.memory->reservation == std::optional<int64_t>(268435456));
  CHECK(r.memory->swap == std::optional<int64_t>(-1));
  CHECK(r.memory->swappiness == std::optional<uint64_t>(10));
  CHECK(r.memory->disable_oom_killer == std::optional<bool>(false));
  CHECK(r.memory->use_hierarchy == std::optional<bool>(true));
  CHECK(r.memory->check_before_update == std::optional<bool>(true));
  REQUIRE(r.cpu);
  CHECK(r.cpu->shares == std::optional<uint64_t>(512));
  CHECK(r.cpu->quota == std::optional<int64_t>(50000));
  CHECK(r.cpu->burst == std::optional<int64_t>(10000));
  CHECK(r.cpu->period == std::optional<uint64_t>(100000));
  CHECK(r.cpu->cpus == "0-1");
  CHECK(r.cpu->mems == "0");
  CHECK(r.cpu->idle == std::optional<int64_t>(0));
  REQUIRE(r.pids);
  CHECK(r.pids->limit == 256);
  REQUIRE(r.block_io);
  CHECK(r.block_io->weight == std::optional<uint16_t>(300));
  CHECK(r.block_io->leaf_weight == std::optional<uint16_t>(200));
  REQUIRE(r.block_io->weight_device.size() == 1);
  CHECK(r.block_io->weight_device[0].weight == std::optional<uint16_t>(500));
  CHECK(r.block_io->weight_device[0].leaf_weight == std::optional<uint16_t>(400));
  CHECK(r.block_io->throttle_read_bps_device.at(0).rate == 1048576);
  CHECK(r.block_io->throttle_write_bps_device[0].rate == 2097152);
  CHECK(r.block_io->throttle_read_iops_device[0].minor == 16);
  CHECK(r.block_io->throttle_write_iops_device[0].rate == 200);
  REQUIRE(r.hugepage_limits.size() == 1);
  CHECK(r.hugepage_limits[0].page_size == "2MB");
  CHECK(r.hugepage_limits[0].limit == 209715200);
  CHECK(r.unified.at("memory.high") == "400000000");

  CHECK(l.cgroups_path == "/envrun/web1");
  CHECK(l.sysctl.at("net.ipv4.ip_forward") == "1");
  CHECK(l.sysctl.at("kernel.shmmax") == "68719476736");
  REQUIRE(l.seccomp);
  CHECK(l.seccomp->default_action == "SCMP_ACT_ERRNO");
  CHECK(l.seccomp->default_errno_ret == std::optional<uint32_t>(1));
  CHECK(l.seccomp->architectures == std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"});
  CHECK(l.seccomp->flags == std::vector<std::string>{"SECCOMP_FILTER_FLAG_LOG"});
  CHECK(l.seccomp->listener_path == "/run/seccomp.sock");
  CHECK(l.seccomp->listener_metadata == "web1");
  REQUIRE(l.seccomp->syscalls.size() == 3);
  CHECK(l.seccomp->syscalls[0].names == std::vector<std::string>{"read", "write"});
  REQUIRE(l.seccomp->syscalls[1].args.size() == 1);
  CHECK(l.seccomp->syscalls[1].args[0].value == 8);
  CHECK(l.seccomp->syscalls[1].args[0].op == "SCMP_CMP_EQ");
  CHECK(l.seccomp->syscalls[2].errno_ret == std::optional<uint32_t>(13));
  CHECK(l.rootfs_propagation == "rslave");
  CHECK(l.masked_paths == std::vector<std::string>{"/proc/kcore", "/sys/firmware"});
  CHECK(l.readonly_paths == std::vector<std::string>{"/proc/sys"});
  CHECK(l.mount_label == "system_u:object_r:svirt_sandbox_file_t:s0");
  CHECK(l.time_offsets_monotonic_secs == std::optional<int64_t>(3600));
  CHECK(l.time_offsets_boottime_secs == std::optional<int64_t>(-60));
  CHECK(l.time_offsets_boottime_nanosecs == std::optional<uint32_t>(5));
}

// parse_spec_json's error message for this document (the test fails if it parses).
std::string parse_error(const json& doc) {
  auto r = parse_spec_json(doc.dump(), "config.json");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::Config);
  return r.error().message;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

// Read as JSON, as YAML, and as the JSON that yaml_to_json makes of the YAML.
Result<oci::Spec> parse_rich(int how) {
  if (how == 0) return parse_spec_json(kRichJson, "config.json");
  if (how == 1) return parse_spec_yaml(kRichYaml, "config.yaml");
  auto j = bundle::yaml_to_json(kRichYaml, "config.yaml");
  if (!j) return j.error();
  return parse_spec_json(j->dump(), "config.json");
}

TEST_CASE("a rich config parses into every field, as JSON and as YAML", "[spec]") {
  int how = GENERATE(0, 1, 2);
  auto spec = parse_rich(how);
  INFO("variant " << how << (spec ? "" : ": " + spec.error().message));
  REQUIRE(spec);
  check_rich(*spec);
}

TEST_CASE("load_spec validates a rich bundle, from JSON and from YAML", "[spec]") {
  TempBundle b;
  SECTION("config.json") { b.write("config.json", kRichJson); }
  SECTION("config.yaml") { b.write("config.yaml", kRichYaml); }
  SECTION("config.yml") { b.write("config.yml", kRichYaml); }
  auto spec = load_spec(b.dir);
  INFO((spec ? "" : spec.error().message));
  REQUIRE(spec);
  check_rich(*spec);
  CHECK(bundle::rootfs_path(*spec, b.dir) == b.dir + "/rootfs");
}

TEST_CASE("malformed JSON is reported with line:column", "[spec]") {
  auto r = parse_spec_json("{\n  \"ociVersion\": \"1.2.0\",\n  \"root\": x\n}", "config.json");
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ErrorKind::Config);
  INFO(r.error().message);
  CHECK(r.error().message.starts_with("config.json:3:11: "));
  CHECK(contains(r.error().message, "syntax error"));
  CHECK_FALSE(contains(r.error().message, "json.exception"));

  auto truncated = parse_spec_json("{\n  \"a\": [1,\n", "config.json");
  REQUIRE_FALSE(truncated);
  INFO(truncated.error().message);
  CHECK(truncated.error().message.starts_with("config.json:3:1: "));
  CHECK(contains(truncated.error().message, "unexpected end of input"));
}

TEST_CASE("bad YAML is reported with line:column", "[spec]") {
  auto r = parse_spec_yaml("ociVersion: 1.2.0\nprocess:\n  args: [sh, -c\ncwd: /\n", "config.yaml");
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ErrorKind::Config);
  INFO(r.error().message);
  CHECK(r.error().message == "config.yaml:4:4: end of sequence flow not found");

  auto indent = parse_spec_yaml("ociVersion: 1.2.0\nroot:\n  path: rootfs\n   readonly: true\n",
                                "config.yaml");
  REQUIRE_FALSE(indent);
  INFO(indent.error().message);
  CHECK(indent.error().message.starts_with("config.yaml:4:"));

  auto dup = parse_spec_yaml("ociVersion: 1.2.0\nhostname: a\nhostname: b\n", "config.yaml");
  REQUIRE_FALSE(dup);
  CHECK(dup.error().message == "config.yaml:3:1: duplicate key \"hostname\"");
}

TEST_CASE("a known field of the wrong type names its path", "[spec]") {
  json doc = minimal();
  doc["process"]["user"] = {{"uid", "root"}};
  CHECK(parse_error(doc) ==
        "config.json: process.user.uid: expected an unsigned integer, got string");

  doc = minimal();
  doc["linux"]["namespaces"][1]["type"] = 7;
  CHECK(parse_error(doc) == "config.json: linux.namespaces[1].type: expected a string, got 7");

  doc = minimal();
  doc["process"]["args"] = {"sh", nullptr};
  CHECK(parse_error(doc) == "config.json: process.args[1]: expected a string, got null");

  CHECK(parse_error(json::array({1, 2})) ==
        "config.json: expected an object at the top level, got array");

  doc = minimal();
  doc["process"]["args"] = "sh";
  CHECK(parse_error(doc) == "config.json: process.args: expected an array, got string");

  doc = minimal();
  doc["annotations"] = {{"org.example/x", true}};
  CHECK(parse_error(doc) ==
        "config.json: annotations[\"org.example/x\"]: expected a string, got boolean");
}

TEST_CASE("a YAML type error carries the line:column of the value", "[spec]") {
  const char* text =
      "ociVersion: 1.2.0\n"
      "process:\n"
      "  args: [sh]\n"
      "  user:\n"
      "    uid: \"1000\"\n";
  auto r = parse_spec_yaml(text, "config.yaml");
  REQUIRE_FALSE(r);
  CHECK(r.error().message ==
        "config.yaml:5:10: process.user.uid: expected an unsigned integer, got string");

  auto missing = parse_spec_yaml("ociVersion: 1.2.0\nroot: [rootfs]\n", "config.yaml");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message == "config.yaml:2:7: root: expected an object, got array");
}

TEST_CASE("negative or oversized values where unsigned are expected are errors", "[spec]") {
  json doc = minimal();
  doc["process"]["user"] = {{"uid", -1}, {"gid", 0}};
  CHECK(parse_error(doc) ==
        "config.json: process.user.uid: expected an unsigned integer, got -1");

  doc = minimal();
  doc["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 4294967296ULL}, {"size", 1}}};
  std::string msg = parse_error(doc);
  CHECK(contains(msg, "linux.uidMappings[0].hostID: expected an unsigned integer"));
  CHECK(contains(msg, "4294967296"));

  doc = minimal();
  doc["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"hard", 1.5}, {"soft", 1}}};
  CHECK(parse_error(doc) ==
        "config.json: process.rlimits[0].hard: expected an unsigned integer, got 1.5");
}

TEST_CASE("semantic errors name the file, the field and the reason", "[spec]") {
  TempBundle b;
  json doc = minimal();
  REQUIRE(b.error_for(json::object()) == "config.json: ociVersion: missing");

  SECTION("process missing") {
    doc.erase("process");
    CHECK(b.error_for(doc) == "config.json: process: missing");
  }
  SECTION("empty args") {
    doc["process"]["args"] = json::array();
    CHECK(b.error_for(doc) == "config.json: process.args must not be empty");
  }
  SECTION("relative cwd") {
    doc["process"]["cwd"] = "srv";
    CHECK(b.error_for(doc) == "config.json: process.cwd: must be an absolute path, got \"srv\"");
  }
  SECTION("unsupported version") {
    doc["ociVersion"] = "2.0.0";
    CHECK(contains(b.error_for(doc), "config.json: ociVersion: unsupported version \"2.0.0\""));
  }
  SECTION("duplicate namespace") {
    doc["linux"]["namespaces"].push_back({{"type", "pid"}});
    CHECK(b.error_for(doc) == "config.json: linux.namespaces[2].type: duplicate namespace \"pid\"");
  }
  SECTION("unknown namespace") {
    doc["linux"]["namespaces"].push_back({{"type", "foo"}});
    CHECK(b.error_for(doc) ==
          "config.json: linux.namespaces[2].type: unknown namespace type \"foo\"");
  }
  SECTION("unknown capability") {
    doc["process"]["capabilities"] = {{"bounding", {"CAP_KILL", "CAP_FLY"}}};
    CHECK(b.error_for(doc) ==
          "config.json: process.capabilities.bounding[1]: unknown capability \"CAP_FLY\"");
  }
  SECTION("unknown rlimit") {
    doc["process"]["rlimits"] = {{{"type", "RLIMIT_FOO"}, {"hard", 1}, {"soft", 1}}};
    CHECK(b.error_for(doc) == "config.json: process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"");
  }
  SECTION("soft rlimit above hard") {
    doc["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 2048}}};
    CHECK(b.error_for(doc) ==
          "config.json: process.rlimits[0]: soft limit 2048 exceeds hard limit 1024 for "
          "RLIMIT_NOFILE");
  }
  SECTION("mappings without a user namespace") {
    doc["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}};
    std::string msg = b.error_for(doc);
    CHECK(msg.starts_with("config.json: linux.uidMappings: set, but no user namespace"));
  }
  SECTION("a user namespace without mappings") {
    doc["linux"]["namespaces"].push_back({{"type", "user"}});
    CHECK(b.error_for(doc) ==
          "config.json: linux.uidMappings: required when a user namespace is created");
  }
  SECTION("a process uid outside the mappings") {
    doc["linux"]["namespaces"].push_back({{"type", "user"}});
    doc["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 1000}}};
    doc["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 1000}}};
    doc["process"]["user"] = {{"uid", 999}, {"gid", 1000}};
    CHECK(b.error_for(doc) ==
          "config.json: process.user.gid: 1000 is not mapped by linux.gidMappings");
  }
  SECTION("relative mount destination") {
    doc["mounts"] = {{{"destination", "proc"}, {"type", "proc"}, {"source", "proc"}}};
    CHECK(b.error_for(doc) ==
          "config.json: mounts[0].destination: must be an absolute path, got \"proc\"");
  }
  SECTION("relative hook path") {
    doc["hooks"] = {{"poststart", {{{"path", "notify"}}}}};
    CHECK(b.error_for(doc) ==
          "config.json: hooks.poststart[0].path: must be an absolute path, got \"notify\"");
  }
  SECTION("hostname without a uts namespace") {
    doc["hostname"] = "web1";
    CHECK(b.error_for(doc) == "config.json: hostname: requires a uts namespace");
  }
  SECTION("net sysctl without a network namespace") {
    doc["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
    CHECK(b.error_for(doc) ==
          "config.json: linux.sysctl[\"net.ipv4.ip_forward\"]: requires a network namespace");
  }
  SECTION("a host-wide sysctl") {
    doc["linux"]["sysctl"] = {{"vm.swappiness", "10"}};
    CHECK(contains(b.error_for(doc), "linux.sysctl[\"vm.swappiness\"]: not a namespaced sysctl"));
  }
  SECTION("unknown seccomp action, op and architecture") {
    doc["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_MAYBE"}};
    CHECK(b.error_for(doc) ==
          "config.json: linux.seccomp.defaultAction: unknown action \"SCMP_ACT_MAYBE\"");
    doc["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"syscalls", {{{"names", {"kill"}}, {"action", "SCMP_ACT_ERRNO"},
                       {"args", {{{"index", 1}, {"value", 9}, {"op", "SCMP_CMP_ABOUT"}}}}}}}};
    CHECK(b.error_for(doc) ==
          "config.json: linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_ABOUT\"");
    doc["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                               {"architectures", {"SCMP_ARCH_Z80"}}};
    CHECK(b.error_for(doc) ==
          "config.json: linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_Z80\"");
  }
  SECTION("unknown isolation") {
    doc["envrun"] = {{"isolation", "vm"}};
    CHECK(b.error_for(doc) ==
          "config.json: envrun.isolation: expected namespaces, intercept or both, got \"vm\"");
  }
}

TEST_CASE("root.path must stay in the bundle and be a directory", "[spec]") {
  TempBundle b;
  json doc = minimal();
  SECTION("escaping with ..") {
    REQUIRE(fs::mkdir_p(b.dir + "-outside"));
    doc["root"]["path"] = "../" + b.dir.substr(b.dir.rfind('/') + 1) + "-outside";
    std::string msg = b.error_for(doc);
    CHECK(contains(msg, "config.json: root.path: \"../"));
    CHECK(contains(msg, "escapes the bundle directory"));
    doc["root"]["path"] = "rootfs/../../x";
    CHECK(contains(b.error_for(doc), "escapes the bundle directory"));
    (void)fs::remove_tree(b.dir + "-outside");
  }
  SECTION("escaping through a symlink") {
    REQUIRE(::symlink("/tmp", (b.dir + "/escape").c_str()) == 0);
    doc["root"]["path"] = "escape";
    std::string msg = b.error_for(doc);
    CHECK(contains(msg, "config.json: root.path: \"escape\" resolves to /tmp, outside the bundle"));
  }
  SECTION("a symlink that stays inside is fine") {
    REQUIRE(::symlink("rootfs", (b.dir + "/current").c_str()) == 0);
    doc["root"]["path"] = "current";
    b.write("config.json", doc.dump());
    auto r = load_spec(b.dir);
    INFO((r ? "" : r.error().message));
    CHECK(r);
  }
  SECTION("an absolute root may be anywhere") {
    doc["root"]["path"] = b.dir + "/rootfs/../rootfs";
    b.write("config.json", doc.dump());
    auto r = load_spec(b.dir);
    INFO((r ? "" : r.error().message));
    REQUIRE(r);
    CHECK(bundle::rootfs_path(*r, "/elsewhere") == b.dir + "/rootfs");
  }
  SECTION("missing root directory") {
    doc["root"]["path"] = "nothere";
    CHECK(b.error_for(doc) == "config.json: root.path: " + b.dir + "/nothere: no such directory");
  }
  SECTION("root is a file") {
    b.write("afile", "x");
    doc["root"]["path"] = "afile";
    CHECK(b.error_for(doc) == "config.json: root.path: " + b.dir + "/afile: not a directory");
  }
  SECTION("root absent") {
    doc.erase("root");
    CHECK(b.error_for(doc) == "config.json: root.path: missing");
  }
}

TEST_CASE("load_spec finds exactly one config file", "[spec]") {
  TempBundle b;
  SECTION("missing bundle") {
    auto r = load_spec(b.dir + "/nope");
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::Config);
    CHECK(r.error().message == "bundle " + b.dir + "/nope: no such directory");
  }
  SECTION("no config") {
    auto r = load_spec(b.dir);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == b.dir + ": no config.json or config.yaml");
  }
  SECTION("both config.json and config.yaml") {
    b.write("config.json", minimal().dump());
    b.write("config.yaml", "ociVersion: 1.2.0\n");
    auto r = load_spec(b.dir);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::Config);
    CHECK(contains(r.error().message, "both config.json and config.yaml present"));
  }
  SECTION("unknown fields are ignored") {
    json doc = minimal();
    doc["vm"] = {{"hypervisor", {{"path", "/usr/bin/qemu"}}}};
    doc["process"]["futureField"] = {1, 2};
    doc["linux"]["intelRdt"] = {{"closID", "x"}};
    b.write("config.json", doc.dump());
    auto r = load_spec(b.dir);
    INFO((r ? "" : r.error().message));
    CHECK(r);
  }
}

TEST_CASE("the default spec round-trips and validates", "[spec]") {
  TempBundle b;
  SECTION("root") {
    json doc = bundle::default_spec_json(false, 0, 0);
    CHECK(doc["ociVersion"] == "1.2.0");
    b.write("config.json", doc.dump(2));
    auto r = load_spec(b.dir);
    INFO((r ? "" : r.error().message));
    REQUIRE(r);
    CHECK(r->process->terminal);
    CHECK(r->process->args == std::vector<std::string>{"sh"});
    CHECK(r->process->env.size() == 2);
    CHECK(r->process->rlimits.at(0).soft == 1024);
    CHECK(r->process->capabilities->bounding.size() == 3);
    CHECK(r->process->no_new_privileges);
    CHECK(r->root.readonly);
    CHECK(r->hostname == "envrun");
    REQUIRE(r->mounts.size() == 7);
    CHECK(r->mounts[2].options.back() == "gid=5");
    CHECK(r->mounts[6].type == "cgroup");
    CHECK(r->linux->namespaces.size() == 6);
    CHECK(r->linux->resources->devices.at(0).access == "rwm");
    CHECK_FALSE(r->linux->resources->devices.at(0).allow);
    CHECK(r->linux->masked_paths.size() >= 10);
    CHECK(r->linux->readonly_paths.size() == 5);
    CHECK(r->linux->uid_mappings.empty());
  }
  SECTION("rootless") {
    json doc = bundle::default_spec_json(true, 1234, 5678);
    b.write("config.json", doc.dump(2));
    auto r = load_spec(b.dir);
    INFO((r ? "" : r.error().message));
    REQUIRE(r);
    const auto& ns = r->linux->namespaces;
    CHECK(std::none_of(ns.begin(), ns.end(), [](auto& n) { return n.type == "network"; }));
    CHECK(ns.back().type == "user");
    REQUIRE(r->linux->uid_mappings.size() == 1);
    CHECK(r->linux->uid_mappings[0].host_id == 1234);
    CHECK(r->linux->uid_mappings[0].container_id == 0);
    CHECK(r->linux->gid_mappings[0].host_id == 5678);
    CHECK_FALSE(r->linux->resources);
    CHECK(r->mounts.back().destination == "/sys");
    CHECK(r->mounts.back().options.front() == "rbind");
    for (auto& m : r->mounts) {
      CHECK(m.type != "cgroup");
      for (auto& o : m.options) CHECK_FALSE(o.starts_with("gid="));
    }
  }
}

TEST_CASE("yaml_to_json resolves plain scalars and keeps quoted ones as text", "[spec]") {
  auto j = bundle::yaml_to_json(
      "a: 12\nb: '12'\nc: -3\nd: 1.5\ne: true\nf: ~\ng: 0755\nh: 0x1f\ni: yes\nhostname: 12\n"
      "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n",
      "t.yaml");
  REQUIRE(j);
  CHECK((*j)["a"] == 12);
  CHECK((*j)["b"] == "12");
  CHECK((*j)["c"] == -3);
  CHECK((*j)["d"] == 1.5);
  CHECK((*j)["e"] == true);
  CHECK((*j)["f"].is_null());
  CHECK((*j)["g"] == 0755);
  CHECK((*j)["h"] == 31);
  CHECK((*j)["i"] == "yes");
  CHECK((*j)["hostname"] == "12");  // the spec wants a string there: the YAML text is kept
  CHECK((*j)["m"] == json({{"x", 1}, {"y", 3}}));
}

TEST_CASE("rootfs_path joins and normalises a relative root", "[spec]") {
  oci::Spec s;
  s.root.path = "./rootfs/../image/rootfs/";
  CHECK(bundle::rootfs_path(s, "/var/lib/b1/") == "/var/lib/b1/image/rootfs");
  s.root.path = "/abs//root/.";
  CHECK(bundle::rootfs_path(s, "/var/lib/b1") == "/abs/root");
}
