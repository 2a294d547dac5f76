// upgrade_instance: choose the mode, swap the instance onto the new version, check its
// health, roll back on failure. Every step is an envrun child (agent/instance_ops.hpp).
#include "agent/upgrade.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "agent/files_in_use.hpp"
#include "agent/health.hpp"
#include "agent/instance_ops.hpp"
#include "agent/library.hpp"
#include "bundle/spec_parser.hpp"
#include "kernel/fs.hpp"

namespace envrun::agent {

const char* upgrade_mode_name(UpgradeMode m) {
  switch (m) {
    case UpgradeMode::Auto: return "auto";
    case UpgradeMode::Restart: return "restart";
    case UpgradeMode::Checkpoint: return "checkpoint";
  }
  return "?";
}

Result<UpgradeMode> parse_upgrade_mode(const std::string& s) {
  if (s == "auto" || s.empty()) return UpgradeMode::Auto;
  if (s == "restart") return UpgradeMode::Restart;
  if (s == "checkpoint") return UpgradeMode::Checkpoint;
  return Error::make(ErrorKind::Usage, "mode \"" + s + "\": use auto, restart or checkpoint");
}

namespace {

using Clock = std::chrono::steady_clock;
using Progress = std::function<void(const std::string&)>;

constexpr int kStopGraceS = 10;

struct Plan {
  std::string id;
  BundleVersion from, to;
  std::string old_rootfs, new_rootfs;
  std::string image;  // checkpoint mode: the image of the old instance
  std::string log;    // where a restarted instance's output goes
};

// Why the new version cannot take a checkpoint of this instance ("" when it can).
Result<std::string> checkpoint_obstacle(const runtime::ContainerState& st, const Plan& p) {
  auto spec = ENVRUN_TRY(bundle::load_spec(p.to.dir));
  bool own_pid_ns = spec.envrun.isolation != "intercept" && spec.linux &&
                    std::any_of(spec.linux->namespaces.begin(), spec.linux->namespaces.end(),
                                [](const auto& n) { return n.type == "pid" && n.path.empty(); });
  if (!own_pid_ns) return std::string("version " + std::to_string(p.to.version) + " has no pid namespace of its own (a restore needs one)");
  auto used = ENVRUN_TRY(files_in_use(st.pid, st.rootfs));
  auto changed = ENVRUN_TRY(changed_files(used, p.old_rootfs, p.new_rootfs));
  if (changed.empty()) return std::string();
  std::string list;
  for (size_t i = 0; i < changed.size() && i < 5; ++i) list += (i ? ", " : "") + changed[i];
  if (changed.size() > 5) list += ", ... (" + std::to_string(changed.size()) + " files)";
  return "version " + std::to_string(p.to.version) + " changes files the instance has open or mapped: " + list;
}

// Puts the old version back after a failed swap; the reason is kept for the message.
Result<UpgradeResult> roll_back(const InstanceOps& ops, const Plan& p, bool from_image, const std::string& why,
                                UpgradeResult r, const Progress& say) {
  say("rolling back to version " + std::to_string(p.from.version) + ": " + why);
  (void)ops.stop_and_delete(p.id, kStopGraceS);
  auto back = from_image ? ops.restore(p.id, p.from.dir, p.image) : ops.start_from(p.id, p.from.dir, p.log);
  if (!back)
    return Error::make(ErrorKind::Generic, why + "; the rollback to version " + std::to_string(p.from.version) +
                                               " failed too: " + back.error().message +
                                               (from_image ? " (the image stays in " + p.image + ")" : ""));
  if (from_image) (void)fs::remove_tree(p.image);
  r.upgraded = false;
  r.rolled_back = true;
  r.message = why + "; rolled back to version " + std::to_string(p.from.version);
  say(r.message);
  return r;
}

Result<UpgradeResult> swap(const InstanceOps& ops, const Plan& p, bool by_checkpoint, const HealthCheck& health,
                           const Progress& say) {
  UpgradeResult r;
  r.from_version = p.from.version;
  r.to_version = p.to.version;
  r.mode_used = by_checkpoint ? "checkpoint" : "restart";
  auto t0 = Clock::now();
  if (by_checkpoint) {
    say("checkpointing " + p.id + " (version " + std::to_string(p.from.version) + ") into " + p.image);
    ENVRUN_CHECK(ops.checkpoint(p.id, p.image));  // a failed checkpoint leaves the instance running
    say("restoring " + p.id + " on version " + std::to_string(p.to.version));
    if (auto rs = ops.restore(p.id, p.to.dir, p.image); !rs)
      return roll_back(ops, p, true, "restore on version " + std::to_string(p.to.version) + " failed: " + rs.error().message, r, say);
  } else {
    say("stopping " + p.id + " (version " + std::to_string(p.from.version) + ")");
    ENVRUN_CHECK(ops.stop_and_delete(p.id, kStopGraceS));
    say("starting " + p.id + " from version " + std::to_string(p.to.version));
    if (auto st = ops.start_from(p.id, p.to.dir, p.log); !st)
      return roll_back(ops, p, false, "start of version " + std::to_string(p.to.version) + " failed: " + st.error().message, r, say);
  }
  r.downtime_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  say("checking the health of " + p.id + " on version " + std::to_string(p.to.version));
  if (auto h = check_health(ops, p.id, health, say); !h) return roll_back(ops, p, by_checkpoint, h.error().message, r, say);
  if (by_checkpoint) (void)fs::remove_tree(p.image);
  r.upgraded = true;
  r.message = p.id + " runs version " + std::to_string(p.to.version) + " (" + r.mode_used + ")";
  say(r.message);
  return r;
}

// One upgrade per instance at a time: DIR/upgrades/ID.lock.
Result<UniqueFd> lock_instance(const std::string& agent_dir, const std::string& id) {
  ENVRUN_CHECK(fs::mkdir_p(agent_dir + "/upgrades", 0700));
  std::string path = agent_dir + "/upgrades/" + id + ".lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Error::sys(path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0)
    return Error::make(ErrorKind::State, "an upgrade of " + id + " is in progress");
  return fd;
}

}  // namespace

Result<UpgradeResult> upgrade_instance(const std::string& agent_dir, const std::string& id, int to_version,
                                       UpgradeMode mode, const HealthCheck& health, Progress progress) {
  auto say = [&](const std::string& line) { if (progress) progress(line); };
  ENVRUN_CHECK(runtime::StateStore::validate_id(id));
  auto lock = ENVRUN_TRY(lock_instance(agent_dir, id));
  InstanceOps ops(agent_dir + "/state");
  Library lib(agent_dir);
  auto st = ENVRUN_TRY(ops.store().load(id));
  if (auto s = ops.store().status(st); s != runtime::Status::Running)
    return Error::make(ErrorKind::State, "instance " + id + " is " + runtime::status_name(s) + ", not running");
  Plan p;
  p.id = id;
  auto from = lib.owner_of(st.bundle);
  if (!from) return Error::make(ErrorKind::State, "instance " + id + " runs from " + st.bundle + ", not from a version in the library");
  p.from = *from;
  p.to = to_version > 0 ? ENVRUN_TRY(lib.version(p.from.name, to_version)) : ENVRUN_TRY(lib.current(p.from.name));
  UpgradeResult r;
  r.from_version = p.from.version;
  r.to_version = p.to.version;
  if (p.to.version == p.from.version) {
    r.message = id + " runs version " + std::to_string(p.to.version) + " already";
    return r;
  }
  if (auto v = validate_bundle_dir(p.to.dir); !v)
    return std::move(v).error().with_context("bundle " + p.to.name + " version " + std::to_string(p.to.version));
  p.old_rootfs = st.rootfs;
  p.new_rootfs = bundle::rootfs_path(ENVRUN_TRY(bundle::load_spec(p.to.dir)), p.to.dir);
  p.image = agent_dir + "/upgrades/" + id + ".img";
  ENVRUN_CHECK(fs::mkdir_p(agent_dir + "/logs", 0700));
  p.log = ops.output_of(id, agent_dir + "/logs/" + id + ".log");  // as the API runs instances
  say("upgrading " + id + " of bundle " + p.from.name + " from version " + std::to_string(p.from.version) + " to " +
      std::to_string(p.to.version) + " (mode " + upgrade_mode_name(mode) + ")");
  bool by_checkpoint = false;
  if (mode != UpgradeMode::Restart) {
    auto why_not = ENVRUN_TRY(checkpoint_obstacle(st, p));
    if (!why_not.empty() && mode == UpgradeMode::Checkpoint)
      return Error::make(ErrorKind::State, "checkpoint upgrade of " + id + " refused: " + why_not + " (use --mode restart)");
    if (!why_not.empty()) say("restart instead of checkpoint: " + why_not);
    by_checkpoint = why_not.empty();
  }
  (void)fs::remove_tree(p.image);
  auto r2 = swap(ops, p, by_checkpoint, health, say);
  if (!r2 && by_checkpoint && mode == UpgradeMode::Auto && ops.status(id) == runtime::Status::Running) {
    say("checkpoint failed (" + r2.error().message + "): restarting instead");
    (void)fs::remove_tree(p.image);
    return swap(ops, p, false, health, say);
  }
  return r2;
}

}  // namespace envrun::agent
