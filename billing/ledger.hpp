// The billing ledger: a SQLite database (WAL) of metered intervals, written by the
// collector and by `envrun delete` (final interval), read by `envrun billing`.
//
// Schema (version 1, PRAGMA user_version; see ledger.cpp for the DDL and envrun-billing(5)):
//   instances  one row per life of a container id (an id reused after delete starts a new
//              life): id, instance, bundle, labels (JSON object), first_ms, last_ms, ended.
//              At most one live (ended = 0) row per instance id.
//   intervals  one row per recorded batch: (instance_id, start_ms) -> end_ms, row_count.
//              Intervals of one instance id never overlap (over all its lives).
//   usage      one row per batch and metric: (instance_id, metric, start_ms) -> end_ms,
//              quantity. Re-recording the same interval changes nothing.
//   cursors    instance_id -> the collector's cursor after its last interval.
//   exports    stream -> end of the last exported window (`billing export --since-last`).
//
// Windows are half-open [from_ms, to_ms) in UTC milliseconds. A usage row whose interval
// straddles a window edge counts pro rata for Sum metrics (quantity * overlap / length)
// and whole for Peak metrics (its peak may have happened on either side).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "billing/usage.hpp"
#include "kernel/result.hpp"

struct sqlite3;

namespace envrun::billing {

inline constexpr int kLedgerSchemaVersion = 1;

// <data root>/billing/ledger.db: /var/lib/envrun for root, $XDG_DATA_HOME/envrun (or
// ~/.local/share/envrun) otherwise.
std::string default_ledger_path();

// One life of an instance.
struct LedgerInstance {
  int64_t row = 0;  // instances.id
  std::string instance;
  std::string bundle;
  std::map<std::string, std::string> labels;
  int64_t first_ms = 0;
  int64_t last_ms = 0;
  bool ended = false;
};

struct MetricQuantity {
  Metric metric;
  double quantity = 0;
};

// The usage of one life, in a window or over its lifetime; metrics in table order.
struct InstanceUsage {
  LedgerInstance instance;
  std::vector<MetricQuantity> metrics;
};

struct UsageFilter {
  std::optional<std::string> instance;  // one instance id (all its lives), else all
  bool live_only = false;               // only lives not ended
  int64_t until_ms = INT64_MAX;         // usage before this time (pro rata at the edge)
};

enum class RecordOutcome { Recorded, AlreadyRecorded };

class Transaction;

// One connection to the ledger file; use it from one thread at a time (processes share
// the file safely, each with its own Ledger).
class Ledger {
 public:
  struct Options {
    int busy_timeout_ms = 10000;  // how long a writer waits for another one
  };
  // Opens (creating the file, mode 0644 for root and 0600 otherwise, and its parent
  // directories) and migrates; a ledger of a newer schema version is refused.
  static Result<Ledger> open(const std::string& path, Options options);
  static Result<Ledger> open(const std::string& path) { return open(path, Options{}); }

  Ledger(Ledger&&) noexcept;
  Ledger& operator=(Ledger&&) noexcept;
  ~Ledger();

  const std::string& path() const { return path_; }

  // One transaction: the instance's live row (created or updated: bundle, labels, last
  // seen, ended when batch.final), its usage rows, the cursor. The exact interval again:
  // AlreadyRecorded, nothing changes. An interval overlapping another recorded interval of
  // the same instance id is refused (ErrorKind::State); so are empty intervals, unknown
  // metrics, a metric twice, negative or non-finite quantities (ErrorKind::Generic).
  Result<RecordOutcome> record(const IntervalBatch& batch);

  // The cursor stored with the last interval of the instance's live life.
  Result<std::optional<std::string>> cursor(const std::string& instance) const;
  // The end of the last recorded interval of the instance's live life.
  Result<std::optional<int64_t>> last_end(const std::string& instance) const;
  // Every life, ordered by instance id then first_ms.
  Result<std::vector<LedgerInstance>> instances() const;
  // Earliest start_ms of any recorded interval.
  Result<std::optional<int64_t>> first_start() const;

  // Per life with rows in [from_ms, to_ms): Sum metrics summed (edges pro rata), Peak
  // metrics the maximum of the rows touching the window.
  Result<std::vector<InstanceUsage>> window_usage(int64_t from_ms, int64_t to_ms) const;
  // Lifetime totals (Sum) and peaks (Peak) per life, up to filter.until_ms.
  Result<std::vector<InstanceUsage>> lifetime_usage(const UsageFilter& filter) const;
  // The rows of each life's latest interval (what it used most recently).
  Result<std::vector<InstanceUsage>> latest_usage(const UsageFilter& filter) const;

  // Export marks (`billing export --since-last`): end of the last exported window per stream.
  Result<std::optional<int64_t>> export_mark(const std::string& stream) const;
  Result<void> set_export_mark(const std::string& stream, int64_t end_ms, int64_t now_ms);

  // A transaction; write = true takes the write lock now (BEGIN IMMEDIATE, waiting up to
  // the busy timeout), so that what is read inside stays true until commit. Inside an
  // open transaction this joins it (commit does nothing, the outer one decides).
  Result<Transaction> transaction(bool write);

 private:
  Ledger(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  Result<void> configure(const Options& options);
  Result<void> migrate();
  std::string where(const std::string& what) const;

  std::string path_;
  sqlite3* db_ = nullptr;
};

// Rolls back on destruction unless committed.
class Transaction {
 public:
  Transaction(Transaction&& o) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Result<void> commit();
  bool joined() const { return !owner_; }

 private:
  friend class Ledger;
  Transaction(sqlite3* db, bool owner, std::string where) : db_(db), owner_(owner), where_(std::move(where)) {}
  sqlite3* db_;
  bool owner_;  // began it (false: joined an outer one)
  std::string where_;
};

}  // namespace envrun::billing
