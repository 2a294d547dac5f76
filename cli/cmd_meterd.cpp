// envrun meterd: the metering collector of a host. One small daemon for every container of
// the state root (instead of one monitor per container: envrun has none, the init is
// reparented like runc's). Every --sample it reads each instance's sources (cgroup files held
// open and pread, /proc per process, the interception counters; billing/sampler.hpp); every
// --interval it records one interval per instance in the ledger (billing/ledger.hpp), all in
// one transaction. Killed at any moment, it loses at most the interval in progress: the
// ledger keeps, with each interval, the cursor it continues from on restart. Instances that
// go are recorded to their end by `envrun delete` (cli/metering.hpp).
#include <csignal>
#include <cstdio>
#include <ctime>
#include <algorithm>
#include <map>
#include <set>

#include "billing/collector.hpp"
#include "billing/ledger.hpp"
#include "cli/cli.hpp"
#include "cli/duration.hpp"
#include "cli/metering.hpp"
#include "kernel/log.hpp"

namespace envrun::cli {
namespace {

volatile sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }

struct Metered {
  billing::InstanceSampler sampler;
  billing::IntervalBuilder builder;
};

class Collector {
 public:
  Collector(const runtime::StateStore& store, billing::Ledger& ledger, billing::CgroupHierarchies h)
      : store_(store), ledger_(ledger), h_(std::move(h)) {}

  // One sample of every instance; new ones are picked up, vanished ones dropped.
  void sample() {
    auto ids = store_.ids();
    for (const auto& id : ids)
      if (!live_.count(id) && !skipped_.count(id)) adopt(id);
    for (auto it = live_.begin(); it != live_.end();) {
      auto r = it->second.sampler.sample();
      if (r) {
        it->second.builder.add(*r);
        ++it;
        continue;
      }
      if (r.error().kind != ErrorKind::NotFound) log::warn("meterd: " + it->first + ": " + r.error().message);
      log::debug("meterd: " + it->first + " is gone (delete records its end)");
      it = live_.erase(it);
    }
    for (auto it = skipped_.begin(); it != skipped_.end();)  // forget ids no longer there
      it = std::find(ids.begin(), ids.end(), *it) == ids.end() ? skipped_.erase(it) : std::next(it);
  }

  // One interval per instance, one transaction.
  Result<int> flush() {
    auto tx = ENVRUN_TRY(ledger_.transaction(true));
    int recorded = 0;
    for (auto it = live_.begin(); it != live_.end();) {
      auto batch = it->second.builder.flush();
      for (const auto& w : it->second.builder.take_warnings()) log::warn("meterd: " + w);
      if (!batch) {
        ++it;
        continue;
      }
      auto r = ledger_.record(*batch);
      if (!r && r.error().kind == ErrorKind::State) {  // `delete` recorded its end meanwhile
        log::debug("meterd: " + it->first + ": " + r.error().message);
        it = live_.erase(it);
        continue;
      }
      ENVRUN_CHECK(std::move(r));
      ++recorded, ++it;
    }
    ENVRUN_CHECK(tx.commit());
    return recorded;
  }
  size_t size() const { return live_.size(); }

 private:
  void adopt(const std::string& id) {
    auto st = store_.load(id);
    if (!st) return;
    auto status = store_.status(*st);
    if (status == runtime::Status::Stopped || status == runtime::Status::Creating) return;
    auto t = metering::target_for(store_, *st, h_);
    if (!t) {
      log::debug("meterd: " + id + ": " + t.error().message);
      skipped_.insert(id);
      return;
    }
    auto sampler = billing::InstanceSampler::open(t->sampler);
    if (!sampler) {
      log::warn("meterd: " + id + ": " + sampler.error().message);
      skipped_.insert(id);
      return;
    }
    auto cursor = ledger_.cursor(id);
    std::optional<billing::IntervalBuilder> b;
    if (cursor && *cursor) {
      auto restored = billing::IntervalBuilder::restore(t->info, **cursor);
      if (restored) b.emplace(std::move(*restored));
      else log::warn("meterd: " + id + ": cursor: " + restored.error().message + " (counting from its creation)");
    }
    if (!b) b.emplace(t->info, t->created_ms);
    log::debug("meterd: metering " + id + " (bundle " + t->info.bundle + ")");
    live_.emplace(id, Metered{std::move(*sampler), std::move(*b)});
  }

  const runtime::StateStore& store_;
  billing::Ledger& ledger_;
  billing::CgroupHierarchies h_;
  std::map<std::string, Metered> live_;
  std::set<std::string> skipped_;
};

int64_t now_ms(clockid_t c) {
  struct timespec ts {};
  ::clock_gettime(c, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

void add_meterd(CLI::App& app, Globals& g) {
  static std::string interval = "10s", sample = "", ledger_path;
  static bool once = false;
  auto* sub = app.add_subcommand("meterd", "metering collector: sample every container, record intervals in the billing ledger");
  sub->add_option("--interval", interval, "length of a recorded interval (10s, 1m, ...)")->capture_default_str();
  sub->add_option("--sample", sample, "time between samples within an interval (default: the interval)");
  sub->add_option("--ledger", ledger_path, "ledger file (default: $ENVRUN_LEDGER, else " + billing::default_ledger_path() + ")");
  sub->add_flag("--once", once, "take one sample of every instance, record it, exit");
  on_run(sub, g, "meterd", nullptr, [&g]() -> Result<int> {
    long iv = parse_duration_ms(interval), sv = sample.empty() ? iv : parse_duration_ms(sample);
    if (iv < 100) return Error::make(ErrorKind::Usage, "--interval " + interval + ": expected a duration of at least 100ms, like 10s");
    if (sv < 100 || sv > iv) return Error::make(ErrorKind::Usage, "--sample " + sample + ": expected a duration from 100ms to the interval");
    auto ledger = ENVRUN_TRY(billing::Ledger::open(ledger_path.empty() ? metering::ledger_path() : ledger_path));
    auto store = g.store();
    Collector c(store, ledger, ENVRUN_TRY(metering::hierarchies()));
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
    int64_t next_flush = now_ms(CLOCK_MONOTONIC) + iv;
    for (;;) {
      c.sample();
      bool flush = once || g_stop || now_ms(CLOCK_MONOTONIC) >= next_flush;
      if (flush) {
        int n = ENVRUN_TRY(c.flush());
        log::debug("meterd: " + std::to_string(n) + " intervals recorded, " + std::to_string(c.size()) + " instances");
        next_flush += iv;
      }
      if (once || g_stop) return 0;
      struct timespec ts = {sv / 1000, (sv % 1000) * 1000000};
      ::nanosleep(&ts, nullptr);  // a signal ends the sleep: the loop samples, flushes, exits
    }
  });
}

}  // namespace envrun::cli
