// The metered quantities: one table shared by the sampler (billing/sampler.*), the ledger
// (billing/ledger.*), pricing plans (billing/plan.*) and the exports. A metric's name is
// what plans, ledgers and exports use; never rename or renumber (ledgers keep the name).
//
// How a metric aggregates over intervals and windows:
//   Sum  - the interval row holds what happened in the interval (a delta of a cumulative
//          counter, or an integral such as byte-seconds); a window is the sum of its rows.
//   Peak - the interval row holds the highest value seen in the interval; a window takes
//          the maximum of its rows.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace envrun::billing {

enum class Aggregation { Sum, Peak };

enum class Metric : uint16_t {
  CpuUserSeconds = 0,     // user CPU time (cgroup cpuacct / cpu.stat), includes exited processes
  CpuSystemSeconds,       // system CPU time, same source
  MemoryByteSeconds,      // integral of the cgroup's memory usage over time
  MemoryPeakBytes,        // peak memory usage (cgroup max_usage / memory.peak, else sampled)
  ProcessesPeak,          // peak number of processes (sampled: pids.peak counts threads)
  ThreadsPeak,            // peak number of threads (pids.current/pids.peak, else sampled)
  ProcessesStarted,       // processes started (interception: every process that loaded the library)
  OpenFilesPeak,          // peak number of open file descriptors over all processes (sampled)
  FilesOpened,            // successful open calls (interception)
  IoBytesRead,            // bytes read through any resource: files, sockets, pipes
  IoBytesWritten,         // bytes written through any resource
  NetBytesReceived,       // bytes received on sockets
  NetBytesSent,           // bytes sent on sockets
  Connections,            // connections accepted
  ConnectionsPeak,        // concurrent client connections, peak
  DistinctPeers,          // peer addresses seen for the first time in the instance's life
  Transactions,           // request/response exchanges on accepted connections
  Count
};

struct MetricInfo {
  Metric metric;
  std::string_view name;  // plans, ledger, exports
  std::string_view unit;  // FOCUS-style consumed unit
  Aggregation aggregation;
  std::string_view help;  // one line, for `billing usage` and Prometheus HELP
};

inline constexpr std::array<MetricInfo, size_t(Metric::Count)> kMetrics{{
    {Metric::CpuUserSeconds, "cpu_user_seconds", "s", Aggregation::Sum, "user CPU time"},
    {Metric::CpuSystemSeconds, "cpu_system_seconds", "s", Aggregation::Sum, "system CPU time"},
    {Metric::MemoryByteSeconds, "memory_byte_seconds", "byte-s", Aggregation::Sum, "memory use integrated over time"},
    {Metric::MemoryPeakBytes, "memory_peak_bytes", "byte", Aggregation::Peak, "peak memory use"},
    {Metric::ProcessesPeak, "processes_peak", "process", Aggregation::Peak, "peak number of processes"},
    {Metric::ThreadsPeak, "threads_peak", "thread", Aggregation::Peak, "peak number of threads"},
    {Metric::ProcessesStarted, "processes_started", "process", Aggregation::Sum, "processes started"},
    {Metric::OpenFilesPeak, "open_files_peak", "file", Aggregation::Peak, "peak number of open files"},
    {Metric::FilesOpened, "files_opened", "file", Aggregation::Sum, "files opened"},
    {Metric::IoBytesRead, "io_bytes_read", "byte", Aggregation::Sum, "bytes read from files, sockets and pipes"},
    {Metric::IoBytesWritten, "io_bytes_written", "byte", Aggregation::Sum, "bytes written to files, sockets and pipes"},
    {Metric::NetBytesReceived, "net_bytes_received", "byte", Aggregation::Sum, "bytes received on sockets"},
    {Metric::NetBytesSent, "net_bytes_sent", "byte", Aggregation::Sum, "bytes sent on sockets"},
    {Metric::Connections, "connections", "connection", Aggregation::Sum, "client connections accepted"},
    {Metric::ConnectionsPeak, "connections_peak", "connection", Aggregation::Peak, "concurrent client connections, peak"},
    {Metric::DistinctPeers, "distinct_peers", "peer", Aggregation::Sum, "peer addresses seen for the first time"},
    {Metric::Transactions, "transactions", "transaction", Aggregation::Sum, "request/response exchanges"},
}};

constexpr const MetricInfo& info(Metric m) { return kMetrics[size_t(m)]; }

constexpr std::optional<Metric> metric_by_name(std::string_view name) {
  for (const auto& i : kMetrics)
    if (i.name == name) return i.metric;
  return std::nullopt;
}

}  // namespace envrun::billing
