// Output formats of the billing exports: CSV and JSON rows, Prometheus text, the human
// usage table (export.hpp).
#include <time.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <optional>
#include <nlohmann/json.hpp>

#include "billing/export.hpp"

namespace envrun::billing {

namespace {

enum class Kind { Text, Number, Object };

struct Column {
  const char* name;
  Kind kind;
};

constexpr Column kColumns[] = {
    {"BillingPeriodStart", Kind::Text}, {"BillingPeriodEnd", Kind::Text},  {"ChargeCategory", Kind::Text},
    {"ChargeDescription", Kind::Text},  {"ResourceId", Kind::Text},        {"ResourceName", Kind::Text},
    {"ConsumedQuantity", Kind::Number}, {"ConsumedUnit", Kind::Text},      {"PricingQuantity", Kind::Number},
    {"PricingUnit", Kind::Text},        {"ListUnitPrice", Kind::Number},   {"BilledCost", Kind::Number},
    {"BillingCurrency", Kind::Text},    {"Tags", Kind::Object},            {"x_Metric", Kind::Text},
    {"x_InstanceCount", Kind::Number},
};
constexpr size_t kColumnCount = std::size(kColumns);

using Cells = std::array<std::optional<std::string>, kColumnCount>;  // nullopt: no value

std::string json_string(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string tags_json(const std::map<std::string, std::string>& tags) {
  return nlohmann::json(tags).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Cells cells(const ExportReport& report, const ExportRow& row) {
  Cells c;
  c[0] = rfc3339(report.from_ms);
  c[1] = rfc3339(report.to_ms);
  c[2] = row.metric ? "Usage" : "Adjustment";
  c[4] = c[5] = row.bundle;
  if (row.metric) {
    const MetricInfo& m = info(*row.metric);
    c[3] = std::string(m.help);
    c[6] = row.consumed.normalized().str();
    c[7] = c[9] = std::string(m.unit);
    c[8] = row.pricing.normalized().str();
    c[10] = row.unit_price.normalized().str();
    c[14] = std::string(m.name);
  } else {
    c[3] = "minimum charge top-up";
  }
  c[11] = row.cost.str();
  c[12] = report.currency;
  c[13] = tags_json(row.tags);
  c[15] = std::to_string(row.instance_count);
  return c;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string csv(const ExportReport& report) {
  std::string out;
  for (size_t i = 0; i < kColumnCount; ++i) out += (i ? "," : "") + std::string(kColumns[i].name);
  out += "\r\n";
  for (const auto& row : report.rows) {
    Cells c = cells(report, row);
    for (size_t i = 0; i < kColumnCount; ++i) out += (i ? "," : "") + csv_field(c[i].value_or(""));
    out += "\r\n";
  }
  return out;
}

std::string json(const ExportReport& report) {
  if (report.rows.empty()) return "[]\n";
  std::string out = "[\n";
  for (size_t r = 0; r < report.rows.size(); ++r) {
    Cells c = cells(report, report.rows[r]);
    out += "{";
    for (size_t i = 0; i < kColumnCount; ++i) {
      out += (i ? "," : "") + json_string(kColumns[i].name) + ":";
      if (!c[i]) out += "null";
      else if (kColumns[i].kind == Kind::Text) out += json_string(*c[i]);
      else out += *c[i];  // exact decimals and the Tags object, as they are
    }
    out += r + 1 < report.rows.size() ? "},\n" : "}\n";
  }
  return out + "]\n";
}

}  // namespace

std::string rfc3339(int64_t ms) {
  int64_t sec = ms / 1000, milli = ms % 1000;
  if (milli < 0) milli += 1000, --sec;
  time_t t = time_t(sec);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[48];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (milli) {
    snprintf(buf, sizeof buf, ".%03d", int(milli));
    out += buf;
  }
  return out + "Z";
}

std::string format_export(const ExportReport& report, ExportFormat format) {
  return format == ExportFormat::Csv ? csv(report) : json(report);
}

namespace {

std::string prom_label(const std::string& v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\') out += "\\\\";
    else if (ch == '"') out += "\\\"";
    else if (ch == '\n') out += "\\n";
    else out += ch;
  }
  return out;
}

std::string plain_number(double q) {
  auto d = quantity_decimal(q);
  return d ? d->normalized().str() : "NaN";
}

// One value with a human unit: 2 decimals, the unit chosen so that the number is readable.
std::string human(double q, std::string_view unit) {
  char buf[64];
  auto fmt = [&](double v, const char* u) {
    snprintf(buf, sizeof buf, "%.2f %s", v, u);
    return std::string(buf);
  };
  auto bytes = [&](double v, const char* suffix) {
    static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    size_t i = 0;
    while (v >= 1024 && i + 1 < std::size(kUnits)) v /= 1024, ++i;
    if (i == 0) {
      snprintf(buf, sizeof buf, "%.0f %s%s", v, kUnits[0], suffix);
      return std::string(buf);
    }
    return fmt(v, (std::string(kUnits[i]) + suffix).c_str());
  };
  if (unit == "s") return q < 120 ? fmt(q, "s") : q < 7200 ? fmt(q / 60, "min") : fmt(q / 3600, "h");
  if (unit == "byte") return bytes(q, "");
  if (unit == "byte-s") {
    constexpr double kMiB = 1024.0 * 1024, kGiB = kMiB * 1024;
    if (q >= 3600 * kGiB) return fmt(q / 3600 / kGiB, "GiB-h");
    if (q >= 3600 * kMiB) return fmt(q / 3600 / kMiB, "MiB-h");
    return bytes(q, "-s");
  }
  return q == std::floor(q) ? plain_number(q) : fmt(q, "");  // counts
}

std::string table(const std::vector<std::array<std::string, 6>>& rows) {
  std::array<size_t, 6> width{};
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

Result<std::string> prometheus_text(const Ledger& ledger, int64_t now_ms) {
  UsageFilter live;
  live.live_only = true;
  live.until_ms = now_ms;
  auto totals = ENVRUN_TRY(ledger.lifetime_usage(live));
  auto latest = ENVRUN_TRY(ledger.latest_usage(live));
  std::string out;
  for (const auto& m : kMetrics) {
    bool peak = m.aggregation == Aggregation::Peak;
    std::string name = "envrun_" + std::string(m.name), samples;
    for (const auto& life : peak ? latest : totals)
      for (const auto& mq : life.metrics)
        if (mq.metric == m.metric)
          samples += name + "{bundle=\"" + prom_label(life.instance.bundle) + "\",instance=\"" +
                     prom_label(life.instance.instance) + "\"} " + plain_number(mq.quantity) + "\n";
    if (samples.empty()) continue;
    out += "# HELP " + name + " " + std::string(m.help) + " (" + std::string(m.unit) + ")\n";
    out += "# TYPE " + name + (peak ? " gauge\n" : " counter\n") + samples;
  }
  return out;
}

Result<std::string> usage_table(const Ledger& ledger, const std::optional<std::string>& instance) {
  UsageFilter filter;
  filter.instance = instance;
  filter.live_only = !instance;
  auto lives = ENVRUN_TRY(ledger.lifetime_usage(filter));
  if (instance && lives.empty()) {
    bool known = false;
    for (const auto& l : ENVRUN_TRY(ledger.instances())) known = known || l.instance == *instance;
    if (!known) return Error::make(ErrorKind::NotFound, "billing usage: " + *instance + ": no such instance in the ledger " + ledger.path());
  }
  std::vector<std::array<std::string, 6>> rows{{"INSTANCE", "BUNDLE", "STATUS", "SINCE", "METRIC", "QUANTITY"}};
  for (const auto& life : lives)
    for (const auto& mq : life.metrics) {
      const MetricInfo& m = info(mq.metric);
      rows.push_back({life.instance.instance, life.instance.bundle, life.instance.ended ? "ended" : "live",
                      rfc3339(life.instance.first_ms), std::string(m.name), human(mq.quantity, m.unit)});
    }
  return table(rows);
}

}  // namespace envrun::billing
