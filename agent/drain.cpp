// Drainer: the drain op, the policy thread's lifetime and the SIGTERM moves (drain.hpp).
#include "agent/drain.hpp"

#include <poll.h>

#include <chrono>

#include "ha/net.hpp"

namespace envrun::agent {

namespace {

using ha::FrameType;

uint64_t now_ms() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

nlohmann::json plan_json(const Plan& plan) {
  nlohmann::json moves = nlohmann::json::array(), stays = nlohmann::json::array();
  for (const auto& m : plan.moves) moves.push_back({{"id", m.id}, {"to", m.to}});
  for (const auto& s : plan.stays) stays.push_back({{"id", s.id}, {"reason", s.reason}});
  return {{"moves", moves}, {"stays", stays}};
}

}  // namespace

Drainer::Drainer(DrainConfig c) : cfg_(std::move(c)), mover_(cfg_.root, cfg_.envrun_globals) {}

Drainer::~Drainer() {
  if (watch_) watch_->stop();
}

Result<void> Drainer::start(int stop_fd) {
  stop_fd_ = stop_fd;
  watch_ = std::make_unique<PolicyWatch>(PolicyWatch::Config{cfg_.root, cfg_.psk_file, cfg_.policy_interval_ms, cfg_.log, cfg_.self}, mover_);
  return watch_->start();
}

bool Drainer::stop_pending() const {
  if (stop_fd_ < 0) return false;
  pollfd p{stop_fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

Result<std::string> Drainer::serve(ha::Channel& ch, const nlohmann::json& begin) {
  std::string to = begin.value("to", std::string());
  bool dry = begin.value("dry_run", false);
  if (!to.empty()) ENVRUN_CHECK(ha::parse_endpoint(to));
  Plan plan = plan_drain(list_candidates(cfg_.root), to, cfg_.psk_file);
  // One being moved already (another drain, a policy) stays out of this plan, and says so
  // (its state may not even read as running while it is checkpointed).
  auto busy = mover_.busy();
  std::erase_if(plan.moves, [&](const PlannedMove& m) { return busy.count(m.id) > 0; });
  std::erase_if(plan.stays, [&](const Stay& s) { return busy.count(s.id) > 0; });
  for (const auto& id : busy) plan.stays.push_back({id, "a migration of it is under way"});
  log(std::string("drain") + (dry ? " (dry run)" : "") + " asked by " + ch.peer() + ": " + std::to_string(plan.moves.size()) +
      " to move, " + std::to_string(plan.stays.size()) + " stay");
  ENVRUN_CHECK(ch.send_json(FrameType::DrainPlan, plan_json(plan)));
  size_t moved = 0, failed = 0;
  bool client_gone = false;
  for (const auto& m : dry ? std::vector<PlannedMove>{} : plan.moves) {
    std::string why_not = stop_pending() ? "the agent is stopping" : client_gone ? "the drain client went away" : "";
    MoveOutcome out{false, why_not};
    if (why_not.empty()) {
      client_gone = !ch.send_json(FrameType::DrainProgress, {{"line", m.id + ": migrating to " + m.to}});
      log(m.id + ": drain: migrating to " + m.to);
      out = mover_.move(m, [&] { client_gone = client_gone || !ch.send(FrameType::Busy, {}); });
    }
    (out.ok ? moved : failed)++;
    log(m.id + ": drain: " + (out.ok ? out.text : "not moved: " + out.text + "; it keeps running here"));
    if (!client_gone)
      client_gone = !ch.send_json(FrameType::DrainResult, {{"id", m.id}, {"to", m.to}, {"ok", out.ok}, {"message", out.text}});
  }
  std::string summary = "drain: " + std::to_string(moved) + " moved, " + std::to_string(failed) + " failed, " +
                        std::to_string(plan.stays.size()) + " stay";
  if (!client_gone)
    (void)ch.send_json(FrameType::DrainDone, {{"moved", moved}, {"failed", failed}, {"stayed", plan.stays.size()}, {"dry_run", dry}});
  return summary;
}

void Drainer::stop(bool sigterm) {
  if (watch_) watch_->stop();
  if (!sigterm) return;
  Plan plan = plan_sigterm(list_candidates(cfg_.root), cfg_.psk_file);
  if (plan.moves.empty() && plan.stays.empty()) return;
  log("SIGTERM: " + std::to_string(plan.moves.size()) + " container(s) with a sigterm policy to move");
  for (const auto& s : plan.stays) log(s.id + ": sigterm: stays: " + s.reason);
  uint64_t deadline = now_ms() + uint64_t(cfg_.sigterm_timeout_ms);
  for (const auto& m : plan.moves) {
    if (now_ms() >= deadline) {
      log(m.id + ": sigterm: not moved: the stop timeout passed; it keeps running here");
      continue;
    }
    log(m.id + ": sigterm: migrating to " + m.to);
    auto out = mover_.move(m);
    log(m.id + ": sigterm: " + (out.ok ? out.text : "not moved: " + out.text + "; it keeps running here"));
  }
}

}  // namespace envrun::agent
