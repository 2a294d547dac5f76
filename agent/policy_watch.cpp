// PolicyWatch (policy_watch.hpp).
#include "agent/policy_watch.hpp"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <set>

namespace envrun::agent {

namespace {

using bundle::MigrationEvent;

uint64_t now_ms() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", v);
  return buf;
}

std::string secs(uint64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", double(ms) / 1000);
  return buf;
}

}  // namespace

std::string over_threshold(const bundle::MigrationPolicy& p, const PressureReading& r) {
  std::string why;
  auto add = [&](const std::string& s) { why += (why.empty() ? "" : ", ") + s; };
  if (p.has(MigrationEvent::MemoryPressure)) {
    if (p.memory_above && r.memory_percent && *r.memory_percent > *p.memory_above)
      add("memory in use " + pct(*r.memory_percent) + " of its " + std::to_string(r.memory_limit >> 20) +
          " MiB limit (above " + pct(*p.memory_above) + ")");
    if (p.memory_psi_above && r.memory_psi && *r.memory_psi > *p.memory_psi_above)
      add("memory pressure " + pct(*r.memory_psi) + " (PSI some avg10, above " + pct(*p.memory_psi_above) + ")");
  }
  if (p.has(MigrationEvent::CpuPressure) && p.cpu_psi_above && r.cpu_psi && *r.cpu_psi > *p.cpu_psi_above)
    add("cpu pressure " + pct(*r.cpu_psi) + " (PSI some avg10, above " + pct(*p.cpu_psi_above) + ")");
  return why;
}

Result<void> PolicyWatch::start() {
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &old);
  try {
    thread_ = std::thread([this] { loop(); });
  } catch (const std::system_error& e) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return Error::make(ErrorKind::System, std::string("the policy thread: ") + e.what());
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return ok();
}

void PolicyWatch::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool PolicyWatch::stopping() {
  std::lock_guard<std::mutex> lk(mu_);
  return stopping_;
}

void PolicyWatch::loop() {
  auto mounts = runtime::CgroupMounts::detect();
  if (!mounts) {
    log("migration policies: cgroups: " + mounts.error().message + " (pressure is not watched)");
    return;
  }
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (cv_.wait_for(lk, std::chrono::milliseconds(cfg_.interval_ms), [this] { return stopping_; })) return;
    }
    round(*mounts);
  }
}

void PolicyWatch::round(const runtime::CgroupMounts& mounts) {
  std::set<std::string> seen;
  for (const auto& c : list_candidates(cfg_.root)) {
    if (stopping()) return;
    seen.insert(c.id);
    auto& t = tracks_[c.id];
    if (!c.policy_error.empty()) {
      if (t.last_error != c.policy_error) log(c.id + ": " + c.policy_error + " (its migration policy is ignored)");
      t.last_error = c.policy_error;
      continue;
    }
    t.last_error.clear();
    const auto& p = c.policy;
    if (c.status != "running" || !(p.has(MigrationEvent::MemoryPressure) || p.has(MigrationEvent::CpuPressure))) continue;
    if (p.peer == cfg_.self) continue;  // it moved here: its peer is this agent
    auto r = read_pressure(mounts, c.cgroup_path);
    if (p.has(MigrationEvent::MemoryPressure) && p.memory_above && !r.memory_percent && !t.no_limit_logged) {
      log(c.id + ": migration.memory_pressure_above: the container has no memory limit (linux.resources.memory.limit); ignored");
      t.no_limit_logged = true;
    }
    std::string why = over_threshold(p, r);
    uint64_t now = now_ms();
    if (why.empty()) {
      t.above_since = 0;
      continue;
    }
    if (!t.above_since) t.above_since = now;
    if (now - t.above_since < uint64_t(p.for_ms) || now < t.retry_at) continue;
    log(c.id + ": " + why + " for " + secs(now - t.above_since) + ": migrating to " + p.peer);
    auto out = mover_.move(move_to_peer(c, cfg_.agent_psk));
    if (out.ok) {
      log(c.id + ": " + out.text);
    } else {
      log(c.id + ": migration to " + p.peer + " failed: " + out.text + "; it keeps running here (next try in " +
          secs(uint64_t(p.retry_ms)) + " at the soonest)");
      t.retry_at = now_ms() + uint64_t(p.retry_ms);
    }
  }
  for (auto it = tracks_.begin(); it != tracks_.end();) it = seen.count(it->first) ? std::next(it) : tracks_.erase(it);
}

}  // namespace envrun::agent
