// The collector's arithmetic: from readings (billing/sampler.hpp) to the rows of one interval
// (billing/usage.hpp), and the cursor that lets a restarted collector go on where the ledger
// stopped. No I/O here: the daemon samples every S seconds, add()s each reading, and flush()es
// every I seconds (several samples per interval make sampled peaks and the memory integral
// better than one reading per interval would).
//
// An interval runs from its baseline (the last reading of the previous interval, from this run
// or decoded from the cursor; for the instance's first interval its creation time, where every
// counter, high-water mark and the memory are zero) to its last sample: [baseline, last).
//
// Sum metrics: the growth of the cumulative counter, summed over consecutive readings
//   (baseline, s1, s2, ...). A step that goes backwards (a restarted instance, a reset counter)
//   counts 0, gives a warning, and the next step diffs against the lower value.
// MemoryByteSeconds: the trapezoid rule over the same points on MemoryPeakBytes' current
//   value: each step adds (m_a + m_b) / 2 * (t_b - t_a) byte-seconds, i.e. memory is taken
//   to move linearly between two samples. Durations come from CLOCK_MONOTONIC, except the
//   step from a baseline of another run (creation time, a cursor) which uses CLOCK_REALTIME.
//   A spike that starts and ends between two samples is not in the integral.
// Peak metrics: the largest of
//   - the current values of the interval's samples, and
//   - a source's since-start high-water mark (cgroup max_usage_in_bytes / memory.peak,
//     pids.peak, kConnectionsPeak) at a sample where it grew since the reading before:
//     it was reached between those two readings, hence inside the interval. A mark that did
//     not grow is an older interval's peak and is left out. (A mark reset by someone drops;
//     its growth is then measured from the lower value.)
//   No sample with a value: no row.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "billing/sampler.hpp"
#include "billing/usage.hpp"
#include "kernel/result.hpp"

namespace envrun::billing {

struct IntervalRows {
  std::vector<UsageRow> rows;         // in Metric order
  std::vector<std::string> warnings;  // "<who>: <metric>: ..."
};

// The rows of one interval (rules above). `baseline_other_run`: the baseline's monotonic time
// is not comparable (creation time, cursor). `samples`: in time order, at least one.
IntervalRows interval_rows(const Reading& baseline, bool baseline_other_run,
                           const std::vector<Reading>& samples, std::string_view who);

// The baseline of an instance's first interval: time `created_ms`, every metric at zero.
Reading creation_baseline(int64_t created_ms);

// Cursor text: compact JSON {"v":1,"t":<realtime ms>,"m":{"<metric>":value | [value,high_water]}}.
std::string encode_cursor(const Reading& baseline);
// Unknown metric names are skipped (a newer collector's cursor); anything else malformed is a
// Config error naming the field.
Result<Reading> decode_cursor(std::string_view text);

class IntervalBuilder {
 public:
  // A new instance: the first interval starts at its creation and counts from zero.
  IntervalBuilder(InstanceInfo instance, int64_t created_ms);
  // A restarted collector: continue after the interval whose cursor the ledger holds.
  static Result<IntervalBuilder> restore(InstanceInfo instance, std::string_view cursor);

  void add(const Reading& r) { samples_.push_back(r); }
  size_t pending() const { return samples_.size(); }
  int64_t start_ms() const { return baseline_.realtime_ms; }

  // Close the interval at the last sample added: its rows and the cursor after it; the last
  // sample (merged over the old baseline for metrics it lacks) becomes the next baseline.
  // Nothing added since the last flush: nullopt.
  std::optional<IntervalBatch> flush(bool final = false);
  // The cursor of the current baseline (what the last flush returned, or the restored one).
  std::string cursor() const { return encode_cursor(baseline_); }
  // Warnings of the flushes so far (counters going backwards, clocks); cleared.
  std::vector<std::string> take_warnings() { return std::exchange(warnings_, {}); }

 private:
  InstanceInfo instance_;
  Reading baseline_;
  bool baseline_other_run_ = true;
  std::vector<Reading> samples_;
  std::vector<std::string> warnings_;
};

}  // namespace envrun::billing
