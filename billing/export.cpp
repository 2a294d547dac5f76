// Export windows: the ledger's usage per bundle and metric, priced by a plan; the
// `--since-last` state. Output formats: export_format.cpp.
#include "billing/export.hpp"

#include <algorithm>
#include <set>

#include "kernel/fs.hpp"

namespace envrun::billing {

namespace {

// One bundle's usage in a window, metrics by name.
struct BundleUsage {
  std::map<std::string_view, std::pair<Metric, Decimal>> metrics;
  std::set<int64_t> lives;
  std::vector<const InstanceUsage*> by_last_seen;
};

Result<std::map<std::string, BundleUsage>> per_bundle(const std::vector<InstanceUsage>& lives) {
  std::map<std::string, BundleUsage> out;
  for (const auto& life : lives) {
    BundleUsage& b = out[life.instance.bundle];
    b.lives.insert(life.instance.row);
    b.by_last_seen.push_back(&life);
    for (const auto& mq : life.metrics) {
      Decimal q = ENVRUN_TRY(quantity_decimal(mq.quantity));  // scale 9, like every quantity
      auto [it, fresh] = b.metrics.try_emplace(info(mq.metric).name, mq.metric, q);
      if (fresh) continue;
      Decimal& acc = it->second.second;
      if (info(mq.metric).aggregation == Aggregation::Sum) acc.units += q.units;
      else acc.units = std::max(acc.units, q.units);
    }
  }
  return out;
}

std::map<std::string, std::string> merged_tags(BundleUsage& b) {
  std::stable_sort(b.by_last_seen.begin(), b.by_last_seen.end(),
                   [](const auto* x, const auto* y) { return x->instance.last_ms < y->instance.last_ms; });
  std::map<std::string, std::string> tags;
  for (const auto* life : b.by_last_seen)
    for (const auto& [k, v] : life->instance.labels) tags[k] = v;
  return tags;
}

// The bundle's Usage rows, then its minimum-charge top-up when its costs fall short.
Result<void> price_bundle(const std::string& name, BundleUsage& b, const Plan* plan, std::vector<ExportRow>& rows) {
  Rounding rounding = plan ? plan->rounding : Rounding{};
  auto tags = merged_tags(b);
  Decimal total{0, rounding.digits};
  bool used = false;
  for (const auto& [metric_name, mq] : b.metrics) {
    auto [metric, consumed] = mq;
    MetricPrice price = plan ? plan->price(name, metric) : MetricPrice{};
    Charge c = ENVRUN_TRY(charge(consumed, price, rounding));
    rows.push_back({name, metric, consumed, c.pricing_quantity, price.unit_price, c.cost, int(b.lives.size()), tags});
    total.units += c.cost.units;
    used = used || !consumed.is_zero();
  }
  if (!plan || !used) return ok();
  Decimal minimum = ENVRUN_TRY(round(plan->minimum_for(name), rounding));
  if (minimum.units <= total.units) return ok();
  ExportRow top{name, std::nullopt, {}, {}, {}, Decimal{minimum.units - total.units, rounding.digits}, int(b.lives.size()), tags};
  rows.push_back(std::move(top));
  return ok();
}

int64_t align_down(int64_t t, int64_t step) { return t - (((t % step) + step) % step); }

}  // namespace

Result<ExportReport> build_export(Ledger& ledger, int64_t from_ms, int64_t to_ms, const Plan* plan) {
  if (to_ms < from_ms)
    return Error::make(ErrorKind::Usage, "export: the window ends (" + rfc3339(to_ms) + ") before it starts (" + rfc3339(from_ms) + ")");
  Transaction tx = ENVRUN_TRY(ledger.transaction(false));
  auto lives = ENVRUN_TRY(ledger.window_usage(from_ms, to_ms));
  ENVRUN_CHECK(tx.commit());
  ExportReport report;
  report.from_ms = from_ms;
  report.to_ms = to_ms;
  report.currency = plan ? plan->currency : "";
  report.instance_count = int(lives.size());
  auto bundles = ENVRUN_TRY(per_bundle(lives));
  for (auto& [name, usage] : bundles) ENVRUN_CHECK(price_bundle(name, usage, plan, report.rows));
  return report;
}

Result<std::string> export_window(Ledger& ledger, int64_t from_ms, int64_t to_ms, const Plan* plan, ExportFormat format) {
  ExportReport report = ENVRUN_TRY(build_export(ledger, from_ms, to_ms, plan));
  return format_export(report, format);
}

Result<PendingExport> export_since_last(Ledger& ledger, int64_t now_ms, const SinceLastOptions& o, const Plan* plan,
                                        ExportFormat format) {
  if (o.stream.empty()) return Error::make(ErrorKind::Usage, "export --since-last: the stream name is empty");
  if (o.granularity_ms <= 0 || o.grace_ms < 0)
    return Error::make(ErrorKind::Usage, "export --since-last: granularity must be > 0 and grace >= 0");
  // The write lock first: the mark read here stays the mark until commit (a second export
  // running at the same time waits, then starts from this one's end).
  Transaction tx = ENVRUN_TRY(ledger.transaction(true));
  int64_t to = align_down(now_ms - o.grace_ms, o.granularity_ms);
  auto mark = ENVRUN_TRY(ledger.export_mark(o.stream));
  int64_t from = to;
  if (mark) {
    from = *mark;
  } else if (auto first = ENVRUN_TRY(ledger.first_start())) {
    from = std::min(to, align_down(*first, o.granularity_ms));
  }
  to = std::max(to, from);
  PendingExport p(ledger, std::move(tx), o.stream, now_ms);
  p.report_ = ENVRUN_TRY(build_export(ledger, from, to, plan));
  p.text_ = format_export(p.report_, format);
  return p;
}

Result<void> PendingExport::commit() {
  if (committed_) return ok();
  if (to_ms() > from_ms()) ENVRUN_CHECK(ledger_->set_export_mark(stream_, to_ms(), now_ms_));
  ENVRUN_CHECK(tx_.commit());
  committed_ = true;
  return ok();
}

Result<PendingExport> export_since_last_to_file(Ledger& ledger, int64_t now_ms, const SinceLastOptions& options,
                                                const Plan* plan, ExportFormat format, const std::string& path) {
  PendingExport p = ENVRUN_TRY(export_since_last(ledger, now_ms, options, plan, format));
  if (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    auto made = fs::mkdir_p(path.substr(0, slash), 0755);
    if (!made) return std::move(made).error().with_context("export " + path);
  }
  auto written = fs::atomic_write(path, p.text(), 0644, true);
  if (!written) return std::move(written).error().with_context("export " + path);
  ENVRUN_CHECK(p.commit());
  return p;
}

}  // namespace envrun::billing
