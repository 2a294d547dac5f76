// The OCI runtime-spec (1.1/1.2) model that envrun honours, as plain structs.
// Parsed from config.json or config.yaml by bundle/spec_parser; consumed by runtime/.
// Optional fields that change behaviour when absent are std::optional.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace envrun::oci {

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additional_gids;
  std::string username;  // ignored on Linux, kept for round-trips
};

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t hard = 0;
  uint64_t soft = 0;
};

struct Capabilities {
  std::vector<std::string> bounding, effective, inheritable, permitted, ambient;  // "CAP_CHOWN"
};

struct ConsoleSize {
  uint32_t height = 0;
  uint32_t width = 0;
};

// Added (runtime-spec 1.2): process.scheduler, sched_setattr(2).
struct Scheduler {
  std::string policy;  // SCHED_OTHER SCHED_FIFO SCHED_RR SCHED_BATCH SCHED_ISO SCHED_IDLE SCHED_DEADLINE
  std::optional<int32_t> nice;
  std::optional<int32_t> priority;
  std::vector<std::string> flags;  // SCHED_FLAG_RESET_ON_FORK ...
  std::optional<uint64_t> runtime, deadline, period;  // nanoseconds (SCHED_DEADLINE)
};

// Added (runtime-spec 1.2): process.ioPriority, ioprio_set(2).
struct IoPriority {
  std::string io_class;  // IOPRIO_CLASS_RT IOPRIO_CLASS_BE IOPRIO_CLASS_IDLE
  int32_t priority = 0;  // 0..7
};

// Added (runtime-spec 1.2): process.execCPUAffinity ("0-3,7" cpu lists).
struct ExecCpuAffinity {
  std::string initial;
  std::string final;  // a contextual keyword only, fine as a member name
};

struct Process {
  bool terminal = false;
  std::optional<ConsoleSize> console_size;
  User user;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::optional<Capabilities> capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  std::string apparmor_profile;  // accepted, not applied (no AppArmor here)
  std::string selinux_label;     // accepted, not applied
  std::optional<Scheduler> scheduler;               // added (1.2)
  std::optional<IoPriority> io_priority;            // added (1.2)
  std::optional<ExecCpuAffinity> exec_cpu_affinity; // added (1.2)
};

struct Root {
  std::string path = "rootfs";  // relative to the bundle, or absolute
  bool readonly = false;
};

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

struct Mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
  std::vector<std::string> uid_mappings_raw;  // idmapped mounts: not supported yet
  // Added: runtime-spec 1.2 idmapped mounts (mounts[].uidMappings / gidMappings). The entries
  // are also dumped as JSON text into uid_mappings_raw so that a non-empty check still works.
  std::vector<IdMapping> uid_mappings, gid_mappings;
};

struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout;  // seconds
};

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;

  // The six phases with their runtime-spec names, in the spec's order (Self: Hooks or const Hooks).
  template <class Self, class F>
  static void each_phase(Self& h, F&& f) {
    f("prestart", h.prestart);
    f("createRuntime", h.create_runtime);
    f("createContainer", h.create_container);
    f("startContainer", h.start_container);
    f("poststart", h.poststart);
    f("poststop", h.poststop);
  }
};

struct Namespace {
  std::string type;  // pid network mount ipc uts user cgroup time
  std::string path;  // join this namespace when non-empty
};

struct Device {
  std::string type;  // c b u p
  std::string path;
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint32_t> file_mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
};

struct DeviceCgroupRule {
  bool allow = false;
  std::string type;  // "a", "c", "b" (empty = all)
  std::optional<int64_t> major;  // absent = wildcard
  std::optional<int64_t> minor;
  std::string access;  // subset of "rwm"
};

struct MemoryResources {
  std::optional<int64_t> limit, reservation, swap, kernel, kernel_tcp;
  std::optional<uint64_t> swappiness;
  std::optional<bool> disable_oom_killer;
  std::optional<bool> use_hierarchy;
  std::optional<bool> check_before_update;
};

struct CpuResources {
  std::optional<uint64_t> shares;
  std::optional<int64_t> quota;
  std::optional<int64_t> burst;
  std::optional<uint64_t> period;
  std::optional<int64_t> realtime_runtime;
  std::optional<uint64_t> realtime_period;
  std::string cpus;
  std::string mems;
  std::optional<int64_t> idle;
};

struct PidsResources {
  int64_t limit = 0;  // <= 0 means unlimited ("max")
};

struct BlockIoDevice {  // weightDevice / throttle*Device
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint16_t> weight;
  std::optional<uint16_t> leaf_weight;
  uint64_t rate = 0;  // throttle entries only
};

struct BlockIoResources {
  std::optional<uint16_t> weight;
  std::optional<uint16_t> leaf_weight;
  std::vector<BlockIoDevice> weight_device;
  std::vector<BlockIoDevice> throttle_read_bps_device, throttle_write_bps_device,
      throttle_read_iops_device, throttle_write_iops_device;
};

struct HugepageLimit {
  std::string page_size;  // "2MB"
  uint64_t limit = 0;
};

// Added: linux.resources.network (cgroup v1 net_cls / net_prio).
struct NetworkResources {
  std::optional<uint32_t> class_id;
  std::map<std::string, uint32_t> priorities;  // interface name -> priority
};

// Added: linux.resources.rdma entries (keyed by device name in Resources::rdma).
struct RdmaLimit {
  std::optional<uint32_t> hca_handles;
  std::optional<uint32_t> hca_objects;
};

struct Resources {
  std::vector<DeviceCgroupRule> devices;
  std::optional<MemoryResources> memory;
  std::optional<CpuResources> cpu;
  std::optional<PidsResources> pids;
  std::optional<BlockIoResources> block_io;
  std::vector<HugepageLimit> hugepage_limits;
  std::map<std::string, std::string> unified;  // raw cgroup v2 files
  std::optional<NetworkResources> network;     // added
  std::map<std::string, RdmaLimit> rdma;       // added
};

struct SeccompArg {
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  std::string op;  // SCMP_CMP_EQ ...
};

struct SeccompSyscall {
  std::vector<std::string> names;
  std::string action;  // SCMP_ACT_ERRNO ...
  std::optional<uint32_t> errno_ret;
  std::vector<SeccompArg> args;
};

struct Seccomp {
  std::string default_action;  // SCMP_ACT_ALLOW ...
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;  // SCMP_ARCH_X86_64 ...
  std::vector<std::string> flags;          // SECCOMP_FILTER_FLAG_LOG ...
  std::string listener_path;
  std::string listener_metadata;
  std::vector<SeccompSyscall> syscalls;
};

// Added: linux.personality, personality(2).
struct Personality {
  std::string domain;              // LINUX LINUX32
  std::vector<std::string> flags;  // reserved by the spec
};

struct Linux {
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::vector<Device> devices;
  std::optional<Resources> resources;
  std::string cgroups_path;
  std::map<std::string, std::string> sysctl;
  std::optional<Seccomp> seccomp;
  std::string rootfs_propagation;  // shared slave private unbindable (r*)
  std::vector<std::string> masked_paths, readonly_paths;
  std::string mount_label;
  std::optional<int64_t> time_offsets_monotonic_secs, time_offsets_boottime_secs;
  // Added: the nanosecond parts of timeOffsets, the personality, and linux.netDevices
  // (1.2: host interface name -> name inside the container, empty = keep the name).
  std::optional<uint32_t> time_offsets_monotonic_nanosecs, time_offsets_boottime_nanosecs;
  std::optional<Personality> personality;
  std::map<std::string, std::string> net_devices;
};

// envrun's own section ("envrun" key at the top level; unknown to other runtimes).
struct EnvrunExtension {
  std::string isolation = "namespaces";  // namespaces | intercept | both
  // intercept/both: a static or setuid entry point (which cannot load the library) runs
  // unredirected with a warning instead of being refused.
  bool intercept_optional = false;
};

struct Spec {
  std::string oci_version;
  Root root;
  std::optional<Process> process;
  std::string hostname;
  std::string domainname;
  std::vector<Mount> mounts;
  Hooks hooks;
  std::map<std::string, std::string> annotations;
  std::optional<Linux> linux;
  EnvrunExtension envrun;
};

}  // namespace envrun::oci
