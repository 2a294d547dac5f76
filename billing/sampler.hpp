// The usage sampler of one running instance: cumulative readings, cheap enough to take every
// second for a hundred instances. Built once per instance; it opens the cgroup accounting
// files (billing/cgroup_usage.hpp) and maps the interception control page (intercept/control.h)
// once, and each sample() is a handful of preads and loads.
//
// What a Reading holds, per metric (absent when this instance has no source for it):
//   Sum metrics  `value` is cumulative since the instance started (counters start at zero
//                in a new cgroup and a new control page). MemoryByteSeconds is never set:
//                the collector integrates MemoryPeakBytes' current value over time.
//   Peak metrics `value` is the current value; `high_water` the since-start maximum the
//                source keeps, when it keeps one (collector.hpp says how both make a peak).
// Sources:
//   CpuUser/SystemSeconds  cgroup CPU (exited processes included)
//   MemoryPeakBytes        value: cgroup memory usage now; high_water: max_usage / memory.peak
//   ThreadsPeak            value: pids.current (tasks = threads), high_water: pids.peak;
//                          without the pids controller: the sum of "Threads:" of the processes
//   ProcessesPeak          value: processes in cgroup.procs now (no kernel high-water mark:
//                          pids.peak counts threads)
//   OpenFilesPeak          value: open fds summed over the processes now
//   control page           kOpens -> FilesOpened, kBytesRead/kBytesWritten -> IoBytesRead/Written,
//                          kAccepts -> Connections, kConnectionsOpen/kConnectionsPeak ->
//                          ConnectionsPeak (value/high_water), kProcessesStarted -> ProcessesStarted,
//                          kNetBytesReceived/kNetBytesSent -> NetBytesReceived/Sent,
//                          kTransactions -> Transactions, kDistinctPeers -> DistinctPeers
//                          (it stops growing once the page's peer table is full: kPeersTableFull)
//   no control page        IoBytesRead/Written from /proc/PID/io rchar/wchar (proc_usage.hpp:
//                          an approximation that misses what exited processes did after their
//                          last sample); the other interception metrics are absent.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "billing/cgroup_usage.hpp"
#include "billing/metrics.hpp"
#include "billing/proc_usage.hpp"
#include "kernel/result.hpp"

namespace envrun::ictl {
struct ControlPage;
}

namespace envrun::billing {

struct MetricValue {
  double value = 0;                  // Sum: cumulative; Peak: current
  std::optional<double> high_water;  // Peak: the source's own since-start maximum, if it keeps one
};

struct Reading {
  int64_t realtime_ms = 0;   // CLOCK_REALTIME, ms since the epoch (interval edges)
  int64_t monotonic_ns = 0;  // CLOCK_MONOTONIC (durations between samples of one run)
  std::array<std::optional<MetricValue>, size_t(Metric::Count)> values;

  const std::optional<MetricValue>& operator[](Metric m) const { return values[size_t(m)]; }
  std::optional<MetricValue>& operator[](Metric m) { return values[size_t(m)]; }
  void set(Metric m, double v, std::optional<double> high_water = std::nullopt) {
    values[size_t(m)] = MetricValue{v, high_water};
  }
};

// The control page of an instance mapped read-only (MAP_SHARED: the library's counter updates
// are seen at once). Validated: magic, version, and a size that covers the counters.
class ControlPageView {
 public:
  ControlPageView() = default;
  ControlPageView(ControlPageView&& o) noexcept;
  ControlPageView& operator=(ControlPageView&& o) noexcept;
  ControlPageView(const ControlPageView&) = delete;
  ControlPageView& operator=(const ControlPageView&) = delete;
  ~ControlPageView();

  // Missing file -> NotFound; not a control page (magic, version, size) -> System naming the field.
  static Result<ControlPageView> open(const std::string& path);
  bool valid() const { return page_ != nullptr; }
  uint64_t counter(uint32_t index) const;  // relaxed load; 0 past the counters array

 private:
  const ictl::ControlPage* page_ = nullptr;
  size_t mapped_ = 0;
};

struct SamplerConfig {
  CgroupHierarchies hierarchies;
  std::string cgroup_path;   // the instance's cgroup, absolute within each hierarchy ("/envrun/web1")
  std::string control_page;  // <state>/intercept/intercept.ctl, "" when it runs without interception
  bool per_process = true;   // look at /proc/PID: processes, open fds (and threads, io when needed)
};

class InstanceSampler {
 public:
  // Opens every source once. The cgroup missing -> NotFound; a bad control page -> its error.
  static Result<InstanceSampler> open(const SamplerConfig& config);

  // One reading. The instance's cgroup removed -> ErrorKind::NotFound (the instance ended).
  Result<Reading> sample();

  bool has_control_page() const { return page_.valid(); }
  const CgroupUsageReader& cgroup() const { return cgroup_; }

 private:
  void add_cgroup(const CgroupCounters& c, Reading& r) const;
  void add_control_page(Reading& r) const;

  CgroupUsageReader cgroup_;
  ControlPageView page_;
  ProcessUsage procs_;
  std::vector<pid_t> pids_;
  bool per_process_ = true;
};

}  // namespace envrun::billing
