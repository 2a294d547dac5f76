// Billing exports of the ledger: windows priced by a plan as CSV or JSON (FOCUS-style
// columns), `--since-last` exports that remember what they exported, the Prometheus text
// exposition, and the human table of `envrun billing usage`.
//
// Columns, in this order (envrun-billing(5)):
//   BillingPeriodStart, BillingPeriodEnd  the window, RFC 3339 UTC
//   ChargeCategory       Usage, or Adjustment for a minimum-charge top-up row
//   ChargeDescription    the metric's description (or the minimum charge's)
//   ResourceId, ResourceName  the bundle name
//   ConsumedQuantity, ConsumedUnit  Sum metrics summed, Peak metrics max'ed over the
//                        bundle's instances; unit from billing/metrics.hpp
//   PricingQuantity, PricingUnit    consumed minus the free tier (never below 0)
//   ListUnitPrice, BilledCost, BillingCurrency  price per unit, the rounded cost
//   Tags                 the labels of the bundle's instances as a JSON object (on a key
//                        the instances disagree on, the one seen last wins)
//   x_Metric             the metric's name (empty on an Adjustment row)
//   x_InstanceCount      instances (lives) of the bundle with usage in the window
// Rows are sorted by bundle then metric name; a bundle's Adjustment row comes last.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "billing/ledger.hpp"
#include "billing/plan.hpp"

namespace envrun::billing {

enum class ExportFormat { Csv, Json };

struct ExportRow {
  std::string bundle;
  std::optional<Metric> metric;  // nullopt: the minimum-charge Adjustment row
  Decimal consumed;              // Usage rows
  Decimal pricing;               // Usage rows: consumed - free tier
  Decimal unit_price;            // Usage rows
  Decimal cost;                  // scale: the plan's digits
  int instance_count = 0;
  std::map<std::string, std::string> tags;
};

struct ExportReport {
  int64_t from_ms = 0, to_ms = 0;
  std::string currency;  // the plan's; empty without a plan (every price 0)
  std::vector<ExportRow> rows;
  int instance_count = 0;  // lives with usage in the window, all bundles
};

// [from_ms, to_ms) priced by `plan` (nullptr: prices 0). Read in one transaction.
Result<ExportReport> build_export(Ledger& ledger, int64_t from_ms, int64_t to_ms, const Plan* plan);
// CSV: RFC 4180 (header line, CRLF line ends, fields with , " CR LF quoted, "" inside);
// JSON: an array of objects with the column names as keys, numbers as exact decimals, Tags
// as an object, absent values as null; "[]" when there are no rows.
std::string format_export(const ExportReport& report, ExportFormat format);

Result<std::string> export_window(Ledger& ledger, int64_t from_ms, int64_t to_ms, const Plan* plan, ExportFormat format);

struct SinceLastOptions {
  std::string stream = "default";      // independent marks per stream (one per consumer)
  int64_t granularity_ms = 3'600'000;  // window ends are multiples of this (UTC)
  int64_t grace_ms = 60'000;           // usage younger than this may still be recorded
};

// An export whose window is not yet marked as exported. It holds the ledger's write lock
// (other writers wait, up to their busy timeout) until commit() or destruction: write the
// text where it goes, then commit(); dropping it uncommitted exports the same window again
// next time.
class PendingExport {
 public:
  int64_t from_ms() const { return report_.from_ms; }
  int64_t to_ms() const { return report_.to_ms; }
  const ExportReport& report() const { return report_; }
  const std::string& text() const { return text_; }
  // Records to_ms as the stream's mark and commits.
  Result<void> commit();

 private:
  friend Result<PendingExport> export_since_last(Ledger&, int64_t, const SinceLastOptions&, const Plan*, ExportFormat);
  PendingExport(Ledger& l, Transaction tx, std::string stream, int64_t now_ms)
      : ledger_(&l), tx_(std::move(tx)), stream_(std::move(stream)), now_ms_(now_ms) {}
  Ledger* ledger_;
  Transaction tx_;
  std::string stream_;
  int64_t now_ms_;
  ExportReport report_;
  std::string text_;
  bool committed_ = false;
};

// The window from the stream's mark (or the first recorded interval, aligned down to the
// granularity) to the latest granularity boundary <= now_ms - grace_ms. Nothing new: an
// empty window (the CSV header alone, or "[]"). A missed run is caught up: the window
// simply spans more.
Result<PendingExport> export_since_last(Ledger& ledger, int64_t now_ms, const SinceLastOptions& options, const Plan* plan,
                                        ExportFormat format);
// The cron step: export_since_last, write `path` (a temp file renamed over it, fsynced),
// then commit the mark; a failed write leaves the mark where it was.
Result<PendingExport> export_since_last_to_file(Ledger& ledger, int64_t now_ms, const SinceLastOptions& options,
                                                const Plan* plan, ExportFormat format, const std::string& path);

// Prometheus text exposition (format 0.0.4) of the live instances: envrun_<metric>{bundle,
// instance}; Sum metrics as counters (lifetime totals up to now_ms), Peak metrics as gauges
// (the peak of the latest recorded interval).
Result<std::string> prometheus_text(const Ledger& ledger, int64_t now_ms);

// `envrun billing usage [ID]`: per instance and metric the lifetime quantity in human units
// (s/min/h, KiB/MiB/GiB, MiB-s/GiB-h). Without an id: live instances; with one: all its
// lives (NotFound when the ledger has none).
Result<std::string> usage_table(const Ledger& ledger, const std::optional<std::string>& instance);

// RFC 3339 UTC: 2026-01-02T03:04:05Z (with .mmm when the milliseconds are not 0).
std::string rfc3339(int64_t ms);

}  // namespace envrun::billing
