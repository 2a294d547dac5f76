// print_migrate_report: totals, the bundle, then one line per memory round.
#include "cli/migrate_report.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace envrun::cli {

namespace {

double ms(uint64_t us) { return double(us) / 1000.0; }

nlohmann::json rounds_json(const ha::MigrateReport& r) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : r.round_log)
    a.push_back({{"round", x.round}, {"kind", x.kind}, {"live", x.live}, {"pages", x.pages},
                 {"memory_bytes", x.pages * 4096}, {"pages_in_parent", x.pages_in_parent}, {"image_bytes", x.image_bytes},
                 {"wire_bytes", x.wire_bytes}, {"ms", ms(x.wall_us)}, {"app_pause_ms", ms(x.pause_us)}});
  return a;
}

std::string budget_line(const MigrateReportHeader& h, const ha::MigrateReport& r) {
  char b[256];
  bool predicted_miss = r.stop != ha::StopRule::Disabled && r.predicted.downtime_us() > h.max_downtime_us;
  if (r.budget_met)
    std::snprintf(b, sizeof b, "met (%.1f ms <= %.1f ms)", ms(r.downtime_us), ms(h.max_downtime_us));
  else if (predicted_miss)
    std::snprintf(b, sizeof b, "downtime budget missed: predicted %.1f ms, took %.1f ms (budget %.1f ms)",
                  ms(r.predicted.downtime_us()), ms(r.downtime_us), ms(h.max_downtime_us));
  else
    std::snprintf(b, sizeof b, "downtime budget missed: took %.1f ms (budget %.1f ms)", ms(r.downtime_us), ms(h.max_downtime_us));
  return b;
}

}  // namespace

void print_migrate_report(const MigrateReportHeader& h, const ha::MigrateReport& r, bool json) {
  for (const auto& w : r.warnings) std::fprintf(stderr, "envrun: migrate %s: warning: %s\n", h.id.c_str(), w.c_str());
  uint64_t files = r.prefetch.blobs_sent + r.final_sync.blobs_sent;
  uint64_t bytes = r.prefetch.bytes_sent + r.final_sync.bytes_sent;
  if (json) {
    nlohmann::json j = {{"id", h.id}, {"to", h.to}, {"target_pid", r.target_pid}, {"total_ms", ms(r.total_us)},
                        {"downtime_ms", ms(r.downtime_us)}, {"rounds", r.rounds}, {"round_log", rounds_json(r)},
                        {"stop_rule", ha::stop_rule_name(r.stop)}, {"lazy_pages", r.lazy_pages},
                        {"downtime_budget", {{"max_ms", ms(h.max_downtime_us)}, {"met", r.budget_met},
                                             {"predicted_ms", ms(r.predicted.downtime_us())},
                                             {"predicted", {{"fixed_ms", ms(r.predicted.fixed_us)},
                                                            {"transfer_ms", ms(r.predicted.transfer_us)},
                                                            {"restore_ms", ms(r.predicted.restore_us)}}}}},
                        {"bundle", {{"files", r.final_sync.files}, {"files_sent", files}, {"bytes_sent", bytes},
                                    {"prefetch", {{"files_sent", r.prefetch.blobs_sent}, {"bytes_sent", r.prefetch.bytes_sent}}},
                                    {"final", {{"files_sent", r.final_sync.blobs_sent}, {"bytes_sent", r.final_sync.bytes_sent}}}}},
                        {"image_bytes", r.image_bytes}, {"wire_bytes_sent", r.wire_sent}};
    if (r.postcopy)
      j["postcopy"] = {{"all_in_ms", ms(r.all_in_us)}, {"ranges_fetched", r.post.ranges}, {"bytes_fetched", r.post.bytes},
                       {"fault_ranges", r.post.fault_ranges}, {"background_ranges", r.post.background_ranges},
                       {"max_in_flight", r.post.max_in_flight}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("migrated %s to %s (pid %lld there)\n", h.id.c_str(), h.to.c_str(), (long long)r.target_pid);
  std::printf("  total time:         %10.1f ms\n", ms(r.total_us));
  std::printf("  downtime:           %10.1f ms  %s\n", ms(r.downtime_us), budget_line(h, r).c_str());
  std::printf("  memory rounds:      %10u  (pre-copy ended by: %s)%s\n", r.rounds, ha::stop_rule_name(r.stop),
              r.lazy_pages ? "; restored with lazy pages there" : "");
  for (const auto& x : r.round_log)
    std::printf("    %-6s %2u %-5s %9llu pages %12llu image bytes %12llu on the wire %9.1f ms, app paused %7.1f ms\n",
                x.live ? "round" : "final", x.round, x.kind.c_str(), (unsigned long long)x.pages,
                (unsigned long long)x.image_bytes, (unsigned long long)x.wire_bytes, ms(x.wall_us), ms(x.pause_us));
  std::printf("  bundle files:       %10llu (%llu sent, %llu bytes)\n", (unsigned long long)r.final_sync.files,
              (unsigned long long)files, (unsigned long long)bytes);
  std::printf("  image bytes:        %10llu\n", (unsigned long long)r.image_bytes);
  std::printf("  bytes on the wire:  %10llu\n", (unsigned long long)r.wire_sent);
  if (r.postcopy)
    std::printf("  post-copy:          %10.1f ms until every page was in; %llu ranges fetched (%llu for faults, %llu in "
                "the background, up to %llu at once), %llu bytes\n",
                ms(r.all_in_us), (unsigned long long)r.post.ranges, (unsigned long long)r.post.fault_ranges,
                (unsigned long long)r.post.background_ranges, (unsigned long long)r.post.max_in_flight,
                (unsigned long long)r.post.bytes);
}

}  // namespace envrun::cli
