// Readings -> interval rows, and the cursor (collector.hpp).
#include "billing/collector.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

namespace envrun::billing {

namespace {

std::string num(double v) {
  std::ostringstream os;
  os.precision(15);
  os << v;
  return os.str();
}

std::string warning(std::string_view who, Metric m, const std::string& what) {
  return std::string(who) + ": " + std::string(info(m).name) + ": " + what;
}

// Growth of a cumulative counter over baseline -> samples; steps backwards count 0.
std::optional<double> sum_growth(const Reading& base, const std::vector<Reading>& samples, Metric m,
                                 std::string_view who, std::vector<std::string>& warnings) {
  double prev = base[m] ? base[m]->value : 0;
  std::optional<double> total;
  for (const auto& s : samples) {
    if (!s[m]) continue;
    double d = s[m]->value - prev;
    if (d < 0) {
      warnings.push_back(warning(who, m, "went backwards from " + num(prev) + " to " + num(s[m]->value) +
                                             " (a restarted instance or a reset counter?): counted 0"));
      d = 0;
    }
    total = total.value_or(0) + d;
    prev = s[m]->value;
  }
  return total;
}

// Trapezoid integral of MemoryPeakBytes' current value, in byte-seconds.
std::optional<double> memory_integral(const Reading& base, bool base_other_run, const std::vector<Reading>& samples,
                                      std::string_view who, std::vector<std::string>& warnings) {
  constexpr Metric mem = Metric::MemoryPeakBytes;
  const Reading* a = &base;
  bool a_other = base_other_run;
  std::optional<double> total;
  for (const auto& b : samples) {
    if (!b[mem]) continue;
    total = total.value_or(0);
    if ((*a)[mem]) {
      double dt = a_other ? double(b.realtime_ms - a->realtime_ms) / 1e3 : double(b.monotonic_ns - a->monotonic_ns) / 1e9;
      if (dt < 0) {
        warnings.push_back(warning(who, Metric::MemoryByteSeconds,
                                   "the clock went backwards by " + num(-dt) + " s between samples: step counted 0"));
        dt = 0;
      }
      *total += ((*a)[mem]->value + b[mem]->value) / 2 * dt;
    }
    a = &b;
    a_other = false;
  }
  return total;
}

// The interval's peak: sampled values, and high-water marks where they grew.
std::optional<double> interval_peak(const Reading& base, const std::vector<Reading>& samples, Metric m) {
  double prev_hw = base[m] && base[m]->high_water ? *base[m]->high_water : 0;
  std::optional<double> best;
  auto take = [&](double v) { best = best ? std::max(*best, v) : v; };
  for (const auto& s : samples) {
    if (!s[m]) continue;
    take(s[m]->value);
    if (s[m]->high_water) {
      if (*s[m]->high_water > prev_hw) take(*s[m]->high_water);
      prev_hw = *s[m]->high_water;
    }
  }
  return best;
}

}  // namespace

IntervalRows interval_rows(const Reading& baseline, bool baseline_other_run, const std::vector<Reading>& samples,
                           std::string_view who) {
  IntervalRows out;
  for (const auto& mi : kMetrics) {
    std::optional<double> q;
    if (mi.metric == Metric::MemoryByteSeconds)
      q = memory_integral(baseline, baseline_other_run, samples, who, out.warnings);
    else if (mi.aggregation == Aggregation::Sum)
      q = sum_growth(baseline, samples, mi.metric, who, out.warnings);
    else
      q = interval_peak(baseline, samples, mi.metric);
    if (q) out.rows.push_back(UsageRow{mi.metric, *q});
  }
  return out;
}

Reading creation_baseline(int64_t created_ms) {
  Reading r;
  r.realtime_ms = created_ms;
  for (const auto& mi : kMetrics)
    r.set(mi.metric, 0, mi.aggregation == Aggregation::Peak ? std::optional<double>(0) : std::nullopt);
  return r;
}

std::string encode_cursor(const Reading& baseline) {
  nlohmann::json m = nlohmann::json::object();
  for (const auto& mi : kMetrics) {
    const auto& v = baseline[mi.metric];
    if (!v) continue;
    if (v->high_water)
      m[std::string(mi.name)] = nlohmann::json::array({v->value, *v->high_water});
    else
      m[std::string(mi.name)] = v->value;
  }
  nlohmann::json j = {{"v", 1}, {"t", baseline.realtime_ms}, {"m", std::move(m)}};
  return j.dump();
}

Result<Reading> decode_cursor(std::string_view text) {
  auto bad = [](const std::string& what) { return Error::make(ErrorKind::Config, "cursor: " + what); };
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (!j.contains("v") || !j["v"].is_number_integer() || j["v"].get<int64_t>() != 1)
    return bad("v: unsupported version (expected 1)");
  if (!j.contains("t") || !j["t"].is_number_integer()) return bad("t: missing or not an integer");
  if (!j.contains("m") || !j["m"].is_object()) return bad("m: missing or not an object");
  Reading r;
  r.realtime_ms = j["t"].get<int64_t>();
  for (const auto& [name, v] : j["m"].items()) {
    auto metric = metric_by_name(name);
    if (!metric) continue;  // written by a newer collector
    if (v.is_number()) {
      r.set(*metric, v.get<double>());
    } else if (v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number()) {
      r.set(*metric, v[0].get<double>(), v[1].get<double>());
    } else {
      return bad("m." + name + ": expected a number or [value, high_water]");
    }
    if (!std::isfinite((*r[*metric]).value)) return bad("m." + name + ": not a finite number");
  }
  return r;
}

IntervalBuilder::IntervalBuilder(InstanceInfo instance, int64_t created_ms)
    : instance_(std::move(instance)), baseline_(creation_baseline(created_ms)) {}

Result<IntervalBuilder> IntervalBuilder::restore(InstanceInfo instance, std::string_view cursor) {
  auto base = decode_cursor(cursor);
  if (!base) return std::move(base).error().with_context(instance.instance);
  IntervalBuilder b(std::move(instance), 0);
  b.baseline_ = std::move(*base);
  b.baseline_other_run_ = true;
  return b;
}

std::optional<IntervalBatch> IntervalBuilder::flush(bool final) {
  if (samples_.empty()) return std::nullopt;
  IntervalRows rows = interval_rows(baseline_, baseline_other_run_, samples_, instance_.instance);
  IntervalBatch batch;
  batch.instance = instance_;
  batch.start_ms = baseline_.realtime_ms;
  batch.end_ms = samples_.back().realtime_ms;
  if (batch.end_ms < batch.start_ms) {
    rows.warnings.push_back(instance_.instance + ": interval ends at " + std::to_string(batch.end_ms) +
                            " ms, before its start " + std::to_string(batch.start_ms) +
                            " ms (realtime clock set back): end moved to the start");
    batch.end_ms = batch.start_ms;
  }
  batch.rows = std::move(rows.rows);
  batch.final = final;
  // The next baseline: the last sample, with the latest earlier value of metrics it lacks.
  Reading next = samples_.back();
  for (const auto& mi : kMetrics) {
    if (next[mi.metric]) continue;
    for (auto it = samples_.rbegin(); it != samples_.rend() && !next[mi.metric]; ++it) next[mi.metric] = (*it)[mi.metric];
    if (!next[mi.metric]) next[mi.metric] = baseline_[mi.metric];
  }
  next.realtime_ms = batch.end_ms;
  baseline_ = std::move(next);
  baseline_other_run_ = false;
  samples_.clear();
  batch.cursor = encode_cursor(baseline_);
  warnings_.insert(warnings_.end(), rows.warnings.begin(), rows.warnings.end());
  return batch;
}

}  // namespace envrun::billing
