// Ledger queries: cursors, lives, window and lifetime usage, export marks.
#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "billing/ledger.hpp"
#include "billing/ledger_sqlite.hpp"

namespace envrun::billing {

namespace {

// The columns of a life, first in every usage query.
constexpr const char* kLifeColumns = "n.id, n.instance, n.bundle, n.labels, n.first_ms, n.last_ms, n.ended";
constexpr int kLifeColumnCount = 7;
// The filter of UsageFilter, on parameters ?3 (instance, '' for all) and ?4 (live only).
constexpr const char* kFilter = "(?3 = '' OR n.instance = ?3) AND (?4 = 0 OR n.ended = 0)";
constexpr const char* kOrder = "ORDER BY n.instance, n.first_ms, n.id";

std::map<std::string, std::string> parse_labels(const std::string& text) {
  std::map<std::string, std::string> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
  return out;
}

LedgerInstance read_life(const sql::Stmt& st) {
  LedgerInstance l;
  l.row = st.i64(0);
  l.instance = st.text(1);
  l.bundle = st.text(2);
  l.labels = parse_labels(st.text(3));
  l.first_ms = st.i64(4);
  l.last_ms = st.i64(5);
  l.ended = st.i64(6) != 0;
  return l;
}

// Rows of (life columns, metric, sum, max), grouped by life in query order: Sum metrics
// take the sum, Peak metrics the maximum. Metric names this envrun does not know (written
// by a newer one) are left out.
Result<std::vector<InstanceUsage>> collect(sql::Stmt& st) {
  std::vector<InstanceUsage> out;
  while (ENVRUN_TRY(st.step())) {
    if (out.empty() || out.back().instance.row != st.i64(0)) out.push_back({read_life(st), {}});
    auto metric = metric_by_name(st.text(kLifeColumnCount));
    if (!metric) continue;
    bool peak = info(*metric).aggregation == Aggregation::Peak;
    out.back().metrics.push_back({*metric, st.f64(peak ? kLifeColumnCount + 2 : kLifeColumnCount + 1)});
  }
  for (auto& u : out)
    std::sort(u.metrics.begin(), u.metrics.end(), [](const auto& a, const auto& b) { return a.metric < b.metric; });
  return out;
}

Result<std::vector<InstanceUsage>> usage_between(sqlite3* db, int64_t from_ms, int64_t to_ms, const UsageFilter& f,
                                                 const std::string& where) {
  // A row inside the window counts whole; one across an edge counts quantity * overlap /
  // length (for Sum metrics; collect() takes the MAX column for Peak metrics).
  std::string q = std::string("SELECT ") + kLifeColumns + R"sql(, u.metric,
      SUM(CASE WHEN u.start_ms >= ?1 AND u.end_ms <= ?2 THEN u.quantity
               ELSE u.quantity * (MIN(u.end_ms, ?2) - MAX(u.start_ms, ?1)) / (u.end_ms - u.start_ms) END),
      MAX(u.quantity)
    FROM usage u JOIN instances n ON n.id = u.instance_id
    WHERE u.end_ms > ?1 AND u.start_ms < ?2 AND )sql" + kFilter + " GROUP BY n.id, u.metric " + kOrder;
  auto st = ENVRUN_TRY(sql::Stmt::prepare(db, q, where));
  st.bind(1, from_ms).bind(2, to_ms).bind(3, f.instance.value_or("")).bind(4, int64_t(f.live_only));
  return collect(st);
}

}  // namespace

Result<std::optional<std::string>> Ledger::cursor(const std::string& instance) const {
  auto st = ENVRUN_TRY(sql::Stmt::prepare(db_, R"sql(
    SELECT c.cursor FROM cursors c JOIN instances n ON n.id = c.instance_id
     WHERE n.instance = ?1 AND n.ended = 0)sql", where("cursor " + instance)));
  st.bind(1, instance);
  if (!ENVRUN_TRY(st.step())) return std::optional<std::string>();
  return std::optional<std::string>(st.text(0));
}

Result<std::optional<int64_t>> Ledger::last_end(const std::string& instance) const {
  auto st = ENVRUN_TRY(sql::Stmt::prepare(db_, R"sql(
    SELECT MAX(v.end_ms) FROM intervals v JOIN instances n ON n.id = v.instance_id
     WHERE n.instance = ?1 AND n.ended = 0)sql", where("last interval " + instance)));
  st.bind(1, instance);
  if (!ENVRUN_TRY(st.step()) || st.is_null(0)) return std::optional<int64_t>();
  return std::optional<int64_t>(st.i64(0));
}

Result<std::vector<LedgerInstance>> Ledger::instances() const {
  auto st = ENVRUN_TRY(sql::Stmt::prepare(db_, std::string("SELECT ") + kLifeColumns + " FROM instances n " + kOrder,
                                          where("instances")));
  std::vector<LedgerInstance> out;
  while (ENVRUN_TRY(st.step())) out.push_back(read_life(st));
  return out;
}

Result<std::optional<int64_t>> Ledger::first_start() const {
  auto st = ENVRUN_TRY(sql::Stmt::prepare(db_, "SELECT MIN(start_ms) FROM intervals", where("first interval")));
  if (!ENVRUN_TRY(st.step()) || st.is_null(0)) return std::optional<int64_t>();
  return std::optional<int64_t>(st.i64(0));
}

Result<std::vector<InstanceUsage>> Ledger::window_usage(int64_t from_ms, int64_t to_ms) const {
  if (to_ms <= from_ms) return std::vector<InstanceUsage>();
  return usage_between(db_, from_ms, to_ms, UsageFilter{}, where("usage in a window"));
}

Result<std::vector<InstanceUsage>> Ledger::lifetime_usage(const UsageFilter& filter) const {
  return usage_between(db_, std::numeric_limits<int64_t>::min(), filter.until_ms, filter,
                       where("lifetime usage"));
}

Result<std::vector<InstanceUsage>> Ledger::latest_usage(const UsageFilter& filter) const {
  std::string q = std::string("SELECT ") + kLifeColumns + R"sql(, u.metric, u.quantity, u.quantity
    FROM instances n
    JOIN usage u ON u.instance_id = n.id
     AND u.start_ms = (SELECT MAX(v.start_ms) FROM intervals v WHERE v.instance_id = n.id)
    WHERE )sql" + kFilter + " " + kOrder;
  auto st = ENVRUN_TRY(sql::Stmt::prepare(db_, q, where("latest usage")));
  st.bind(3, filter.instance.value_or("")).bind(4, int64_t(filter.live_only));
  return collect(st);
}

Result<std::optional<int64_t>> Ledger::export_mark(const std::string& stream) const {
  auto st = ENVRUN_TRY(sql::Stmt::prepare(db_, "SELECT end_ms FROM exports WHERE stream = ?1", where("export mark " + stream)));
  st.bind(1, stream);
  if (!ENVRUN_TRY(st.step())) return std::optional<int64_t>();
  return std::optional<int64_t>(st.i64(0));
}

Result<void> Ledger::set_export_mark(const std::string& stream, int64_t end_ms, int64_t now_ms) {
  auto st = ENVRUN_TRY(sql::Stmt::prepare(db_, R"sql(
    INSERT INTO exports (stream, end_ms, exported_at_ms) VALUES (?1, ?2, ?3)
      ON CONFLICT (stream) DO UPDATE SET end_ms = excluded.end_ms, exported_at_ms = excluded.exported_at_ms)sql",
                                          where("export mark " + stream)));
  st.bind(1, stream).bind(2, end_ms).bind(3, now_ms);
  return st.run();
}

}  // namespace envrun::billing
