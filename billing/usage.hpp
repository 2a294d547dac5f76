// What the collector hands the ledger: per instance and interval, one row per metric.
// Times are UTC milliseconds since the epoch; intervals are half-open [start, end).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "billing/metrics.hpp"

namespace envrun::billing {

struct InstanceInfo {
  std::string instance;                       // container id
  std::string bundle;                         // bundle name (the bundle directory's name, or envrun.billing.bundle)
  std::map<std::string, std::string> labels;  // from the spec's annotations / envrun.yaml billing labels
};

struct UsageRow {
  Metric metric;
  double quantity = 0;  // in info(metric).unit; Sum: what happened in the interval, Peak: the interval's peak
};

// One interval of one instance. `cursor` is the collector's opaque state after this
// interval (cumulative counter values it diffs against next time); the ledger stores it in
// the same transaction as the rows, so that a collector restarted after a crash neither
// loses nor counts twice what was already recorded.
struct IntervalBatch {
  InstanceInfo instance;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  std::vector<UsageRow> rows;
  std::string cursor;
  bool final = false;  // the instance ended with this interval (delete, exit of a metered exec)
};

}  // namespace envrun::billing
