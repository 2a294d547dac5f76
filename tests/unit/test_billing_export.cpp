// billing/export: windows priced by a plan (edges, free tier, minimum charge, overrides,
// rounding), CSV/JSON text, --since-last (idempotent, catch-up, a failed write keeps the
// mark, the write lock), Prometheus text, the usage table. Real ledgers in a temp dir.
#include <fcntl.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "billing/export.hpp"
#include "kernel/fs.hpp"

using namespace envrun;
using namespace envrun::billing;

namespace {

constexpr int64_t T0 = 1767225600000;  // 2026-01-01T00:00:00Z
constexpr int64_t M = 60000, H = 60 * M;
constexpr double GiB = 1024.0 * 1024 * 1024;

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/envrun-export-XXXXXX";
    REQUIRE(::mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() { (void)fs::remove_tree(path); }
};

void rec(Ledger& l, const std::string& id, const std::string& bundle, std::map<std::string, std::string> labels,
         int64_t start, int64_t end, std::vector<UsageRow> rows, bool final = false) {
  IntervalBatch b;
  b.instance = {id, bundle, std::move(labels)};
  b.start_ms = start;
  b.end_ms = end;
  b.rows = std::move(rows);
  b.final = final;
  auto r = l.record(b);
  if (!r) FAIL("record: " << r.error().message);
}

// web1 and web2 of bundle redis, api1 of bundle api; web1's second interval crosses T0+1h.
void seed(Ledger& l) {
  std::map<std::string, std::string> web1{{"team", "cache"}, {"tier", "silver"}};
  rec(l, "web1", "redis", web1, T0, T0 + 30 * M,
      {{Metric::CpuUserSeconds, 1800}, {Metric::MemoryPeakBytes, GiB}, {Metric::NetBytesSent, 1000}});
  rec(l, "web1", "redis", web1, T0 + 30 * M, T0 + 90 * M,
      {{Metric::CpuUserSeconds, 3600}, {Metric::MemoryPeakBytes, 2 * GiB}, {Metric::NetBytesSent, 3000}});
  rec(l, "web2", "redis", {{"team", "cache"}, {"tier", "gold"}}, T0, T0 + 60 * M,
      {{Metric::CpuUserSeconds, 600}, {Metric::MemoryPeakBytes, GiB / 2}});
  rec(l, "api1", "api", {{"note", "say \"hi\", ok"}}, T0 + 10 * M, T0 + 20 * M, {{Metric::FilesOpened, 42}});
}

const std::string kPlanHead = R"(version: 1
currency: EUR
minimum_charge: 0.50
metrics:
  cpu_user_seconds: {unit_price: 0.0001, unit: s, free_tier: 600}
  net_bytes_sent: {unit_price: 0.001}
  memory_peak_bytes: {unit_price: 1.0e-9}
bundles:
)";

Plan plan(const std::string& rounding = "{mode: half-up, digits: 2}", const std::string& redis_minimum = "0") {
  std::string text = kPlanHead + "  redis: {metrics: {cpu_user_seconds: {unit_price: 0.00015}}, minimum_charge: " +
                     redis_minimum + "}\nrounding: " + rounding + "\n";
  auto p = parse_plan_yaml(text, "plan.yaml");
  if (!p) FAIL(p.error().message);
  return *p;
}

Ledger open_seeded(const TempDir& dir) {
  auto l = Ledger::open(dir.path + "/ledger.db");
  if (!l) FAIL(l.error().message);
  seed(*l);
  return std::move(*l);
}

const std::string kHeader =
    "BillingPeriodStart,BillingPeriodEnd,ChargeCategory,ChargeDescription,ResourceId,ResourceName,ConsumedQuantity,"
    "ConsumedUnit,PricingQuantity,PricingUnit,ListUnitPrice,BilledCost,BillingCurrency,Tags,x_Metric,x_InstanceCount\r\n";

// "bundle/metric=cost" per row (Adjustment rows: bundle/adjustment=cost).
std::string costs(const ExportReport& r) {
  std::string out;
  for (const auto& row : r.rows)
    out += row.bundle + "/" + (row.metric ? std::string(info(*row.metric).name) : "adjustment") + "=" + row.cost.str() + " ";
  return out;
}

}  // namespace

TEST_CASE("export: the first hour as CSV, exactly") {
  TempDir dir;
  Ledger l = open_seeded(dir);
  Plan p = plan();
  auto csv = export_window(l, T0, T0 + H, &p, ExportFormat::Csv);
  REQUIRE(csv.ok());
  const std::string w = "2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,";
  const std::string api_tags = "\"{\"\"note\"\":\"\"say \\\"\"hi\\\"\", ok\"\"}\"";
  const std::string redis_tags = "\"{\"\"team\"\":\"\"cache\"\",\"\"tier\"\":\"\"silver\"\"}\"";
  // redis: CPU 1800 + 1800 (half of the interval across 01:00) + 600 = 4200 s, 600 free,
  // 3600 at redis's 0.00015 = 0.54; memory peak 2 GiB (the crossing interval counts whole)
  // at 1e-9 = 2.147483648 -> 2.15; bytes 1000 + 1500 = 2500 at 0.001 = 2.50; no minimum.
  // api: files_opened is not priced (0) and the 0.50 minimum tops it up.
  CHECK(*csv == kHeader +
                    w + "Usage,files opened,api,api,42,file,42,file,0,0.00,EUR," + api_tags + ",files_opened,1\r\n" +
                    w + "Adjustment,minimum charge top-up,api,api,,,,,,0.50,EUR," + api_tags + ",,1\r\n" +
                    w + "Usage,user CPU time,redis,redis,4200,s,3600,s,0.00015,0.54,EUR," + redis_tags + ",cpu_user_seconds,2\r\n" +
                    w + "Usage,peak memory use,redis,redis,2147483648,byte,2147483648,byte,0.000000001,2.15,EUR," + redis_tags +
                    ",memory_peak_bytes,2\r\n" +
                    w + "Usage,bytes sent on sockets,redis,redis,2500,byte,2500,byte,0.001,2.50,EUR," + redis_tags +
                    ",net_bytes_sent,2\r\n");
}

TEST_CASE("export: the second hour gets the rest of the crossing interval") {
  TempDir dir;
  Ledger l = open_seeded(dir);
  Plan p = plan();
  auto r = build_export(l, T0 + H, T0 + 2 * H, &p);
  REQUIRE(r.ok());
  // web1 alone: 1800 s - 600 free = 1200 at 0.00015 = 0.18; peak 2 GiB; 1500 bytes.
  CHECK(costs(*r) == "redis/cpu_user_seconds=0.18 redis/memory_peak_bytes=2.15 redis/net_bytes_sent=1.50 ");
  REQUIRE(r->rows.size() == 3);
  CHECK(r->rows[0].consumed.normalized().str() == "1800");
  CHECK(r->rows[0].instance_count == 1);
  CHECK(r->instance_count == 1);
  // Both hours at once: 6000 s of CPU.
  auto both = build_export(l, T0, T0 + 2 * H, &p);
  REQUIRE(both.ok());
  CHECK(costs(*both) == "api/files_opened=0.00 api/adjustment=0.50 redis/cpu_user_seconds=0.81 "
                        "redis/memory_peak_bytes=2.15 redis/net_bytes_sent=4.00 ");
  // One minute: 3600 * 1/60 of the crossing interval + 600 * 1/60 of web2's.
  auto minute = build_export(l, T0 + 30 * M, T0 + 31 * M, nullptr);
  REQUIRE(minute.ok());
  CHECK(minute->rows[0].consumed.normalized().str() == "70");
  CHECK(minute->currency.empty());
  CHECK(costs(*minute) == "redis/cpu_user_seconds=0.00 redis/memory_peak_bytes=0.00 redis/net_bytes_sent=0.00 ");
}

TEST_CASE("export: rounding modes, minimum charge top-up, free tier above usage") {
  TempDir dir;
  Ledger l = open_seeded(dir);
  auto run = [&](const Plan& p) {
    auto r = build_export(l, T0, T0 + H, &p);
    REQUIRE(r.ok());
    return costs(*r);
  };
  CHECK(run(plan("{mode: down, digits: 2}")) ==
        "api/files_opened=0.00 api/adjustment=0.50 redis/cpu_user_seconds=0.54 redis/memory_peak_bytes=2.14 redis/net_bytes_sent=2.50 ");
  CHECK(run(plan("{mode: up, digits: 1}")) ==
        "api/files_opened=0.0 api/adjustment=0.5 redis/cpu_user_seconds=0.6 redis/memory_peak_bytes=2.2 redis/net_bytes_sent=2.5 ");
  // Whole euros, half-even: the 0.50 minimum rounds to 0 (no top-up), 2.5 to 2.
  CHECK(run(plan("{mode: half-even, digits: 0}")) ==
        "api/files_opened=0 redis/cpu_user_seconds=1 redis/memory_peak_bytes=2 redis/net_bytes_sent=2 ");
  // redis with a 10.00 minimum: 0.54 + 2.15 + 2.50 = 5.19, topped up by 4.81.
  CHECK(run(plan("{mode: half-up, digits: 2}", "10")) ==
        "api/files_opened=0.00 api/adjustment=0.50 redis/cpu_user_seconds=0.54 redis/memory_peak_bytes=2.15 "
        "redis/net_bytes_sent=2.50 redis/adjustment=4.81 ");
  // A free tier above the usage: nothing to pay, pricing quantity 0.
  auto p = parse_plan_yaml("version: 1\ncurrency: EUR\nmetrics:\n  files_opened: {unit_price: 1, free_tier: 100}\n", "p.yaml");
  REQUIRE(p.ok());
  auto r = build_export(l, T0, T0 + H, &*p);
  REQUIRE(r.ok());
  CHECK(r->rows[0].pricing.is_zero());
  CHECK(r->rows[0].cost.str() == "0.00");
  // A bundle whose usage is all 0 gets no minimum charge.
  rec(l, "idle1", "idle", {}, T0, T0 + H, {{Metric::CpuUserSeconds, 0}});
  auto idle = build_export(l, T0, T0 + H, &*p);
  CHECK(costs(*idle).find("idle/adjustment") == std::string::npos);
}

TEST_CASE("export: JSON rows with exact numbers, Tags objects and nulls") {
  TempDir dir;
  Ledger l = open_seeded(dir);
  Plan p = plan();
  auto text = export_window(l, T0, T0 + H, &p, ExportFormat::Json);
  REQUIRE(text.ok());
  CHECK_THAT(*text, Catch::Contains(R"("ListUnitPrice":0.00015,"BilledCost":0.54,"BillingCurrency":"EUR")"));
  auto j = nlohmann::json::parse(*text);
  REQUIRE(j.size() == 5);
  CHECK(j[0]["Tags"]["note"] == "say \"hi\", ok");
  CHECK(j[1]["ChargeCategory"] == "Adjustment");
  CHECK(j[1]["ConsumedQuantity"].is_null());
  CHECK(j[1]["x_Metric"].is_null());
  CHECK(j[1]["BilledCost"] == 0.5);
  CHECK(j[3]["ConsumedQuantity"] == 2147483648LL);
  CHECK(j[3]["x_InstanceCount"] == 2);
  CHECK(j[3]["BillingPeriodEnd"] == "2026-01-01T01:00:00Z");
  CHECK(j[4]["Tags"]["tier"] == "silver");  // web1, seen last, wins over web2's gold
  CHECK(export_window(l, T0 + 5 * H, T0 + 6 * H, &p, ExportFormat::Json).value() == "[]\n");
  CHECK(export_window(l, T0 + 5 * H, T0 + 6 * H, &p, ExportFormat::Csv).value() == kHeader);
  auto backwards = export_window(l, T0 + H, T0, &p, ExportFormat::Csv);
  REQUIRE_FALSE(backwards.ok());
  CHECK(backwards.error().kind == ErrorKind::Usage);
}

TEST_CASE("export: --since-last exports each window once and catches up a missed run") {
  TempDir dir;
  Ledger l = open_seeded(dir);
  Plan p = plan();
  SinceLastOptions o;  // hourly, 60 s grace
  {
    // 02:00:30 is within the grace after 02:00: only up to 01:00.
    auto early = export_since_last(l, T0 + 2 * H + 30000, o, &p, ExportFormat::Csv);
    REQUIRE(early.ok());
    CHECK(early->from_ms() == T0);
    CHECK(early->to_ms() == T0 + H);
    // Not committed: dropped, the mark stays unset.
  }
  CHECK(l.export_mark("default").value() == std::nullopt);
  auto first = export_since_last(l, T0 + 2 * H + 5 * M, o, &p, ExportFormat::Csv);
  REQUIRE(first.ok());
  CHECK(first->from_ms() == T0);  // the first recorded interval, aligned down
  CHECK(first->to_ms() == T0 + 2 * H);
  CHECK(costs(first->report()) == "api/files_opened=0.00 api/adjustment=0.50 redis/cpu_user_seconds=0.81 "
                                  "redis/memory_peak_bytes=2.15 redis/net_bytes_sent=4.00 ");
  REQUIRE(first->commit().ok());
  CHECK(l.export_mark("default").value() == std::optional<int64_t>(T0 + 2 * H));
  // Twice: nothing the second time, in either format.
  for (auto fmt : {ExportFormat::Csv, ExportFormat::Json}) {
    auto again = export_since_last(l, T0 + 2 * H + 6 * M, o, &p, fmt);
    REQUIRE(again.ok());
    CHECK(again->from_ms() == again->to_ms());
    CHECK(again->text() == (fmt == ExportFormat::Csv ? kHeader : "[]\n"));
    REQUIRE(again->commit().ok());
  }
  CHECK(l.export_mark("default").value() == std::optional<int64_t>(T0 + 2 * H));
  // web1 runs on 02:00-05:00 (3000 s of CPU); the 03:00 run happens, 04:00 and 05:00 are missed.
  rec(l, "web1", "redis", {}, T0 + 2 * H, T0 + 5 * H, {{Metric::CpuUserSeconds, 3000}});
  auto third = export_since_last(l, T0 + 3 * H + 5 * M, o, &p, ExportFormat::Csv);
  REQUIRE(third.ok());
  CHECK((third->from_ms() == T0 + 2 * H && third->to_ms() == T0 + 3 * H));
  CHECK(third->report().rows.at(0).consumed.normalized().str() == "1000");
  REQUIRE(third->commit().ok());
  auto caught_up = export_since_last(l, T0 + 6 * H + 2 * M, o, &p, ExportFormat::Csv);
  REQUIRE(caught_up.ok());
  CHECK((caught_up->from_ms() == T0 + 3 * H && caught_up->to_ms() == T0 + 6 * H));
  CHECK(costs(caught_up->report()) == "redis/cpu_user_seconds=0.21 ");  // 2000 - 600 free, at 0.00015
  REQUIRE(caught_up->commit().ok());
  // Another stream has its own mark and starts from the beginning.
  SinceLastOptions other;
  other.stream = "finance";
  other.granularity_ms = 24 * H;
  auto day = export_since_last(l, T0 + 24 * H + 5 * M, other, &p, ExportFormat::Csv);
  REQUIRE(day.ok());
  CHECK((day->from_ms() == T0 && day->to_ms() == T0 + 24 * H));
}

TEST_CASE("export: --since-last to a file commits the mark only after the file is in place") {
  TempDir dir;
  Ledger l = open_seeded(dir);
  Plan p = plan();
  REQUIRE(fs::write_file(dir.path + "/file", "x", O_CREAT).ok());
  auto bad = export_since_last_to_file(l, T0 + 2 * H + 5 * M, {}, &p, ExportFormat::Csv, dir.path + "/file/out.csv");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Catch::StartsWith("export " + dir.path + "/file/out.csv: "));
  CHECK(l.export_mark("default").value() == std::nullopt);  // the window is not lost
  std::string out = dir.path + "/exports/2026010102.csv";
  auto good = export_since_last_to_file(l, T0 + 2 * H + 5 * M, {}, &p, ExportFormat::Csv, out);
  REQUIRE(good.ok());
  CHECK(fs::read_file(out).value() == good->text());
  CHECK(good->text().size() > kHeader.size());
  CHECK(l.export_mark("default").value() == std::optional<int64_t>(T0 + 2 * H));
  CHECK_FALSE(fs::exists(out + ".tmp"));
}

TEST_CASE("export: a pending --since-last export holds the write lock until it commits") {
  TempDir dir;
  Ledger l = open_seeded(dir);
  Ledger::Options quick;
  quick.busy_timeout_ms = 100;
  auto writer = Ledger::open(dir.path + "/ledger.db", quick);
  REQUIRE(writer.ok());
  IntervalBatch b;
  b.instance = {"web9", "redis", {}};
  b.start_ms = T0;
  b.end_ms = T0 + M;
  b.rows = {{Metric::CpuUserSeconds, 1}};
  {
    auto pending = export_since_last(l, T0 + 2 * H + 5 * M, {}, nullptr, ExportFormat::Csv);
    REQUIRE(pending.ok());
    auto blocked = writer->record(b);
    REQUIRE_FALSE(blocked.ok());
    CHECK_THAT(blocked.error().message, Catch::Contains("locked by another writer"));
    // A second exporter of the same stream waits too (it would otherwise read the old mark).
    auto second = export_since_last(*writer, T0 + 2 * H + 5 * M, {}, nullptr, ExportFormat::Csv);
    CHECK_FALSE(second.ok());
    REQUIRE(pending->commit().ok());
  }
  CHECK(writer->record(b).ok());
  auto after = export_since_last(*writer, T0 + 2 * H + 5 * M, {}, nullptr, ExportFormat::Csv);
  REQUIRE(after.ok());
  CHECK(after->from_ms() == after->to_ms());
}

TEST_CASE("export: Prometheus text of the live instances") {
  TempDir dir;
  auto opened = Ledger::open(dir.path + "/ledger.db");
  REQUIRE(opened.ok());
  Ledger& l = *opened;
  seed(l);
  rec(l, "web2", "redis", {}, T0 + 60 * M, T0 + 61 * M, {{Metric::CpuUserSeconds, 1}}, true);  // ended
  rec(l, "q1", "we\"ird\\b", {}, T0, T0 + M, {{Metric::FilesOpened, 3}});
  rec(l, "api1", "api", {}, T0 + 20 * M, T0 + 21 * M, {{Metric::FilesOpened, 1}}, true);  // ended
  auto text = prometheus_text(l, T0 + 2 * H);
  REQUIRE(text.ok());
  CHECK(*text ==
        "# HELP envrun_cpu_user_seconds user CPU time (s)\n"
        "# TYPE envrun_cpu_user_seconds counter\n"
        "envrun_cpu_user_seconds{bundle=\"redis\",instance=\"web1\"} 5400\n"
        "# HELP envrun_memory_peak_bytes peak memory use (byte)\n"
        "# TYPE envrun_memory_peak_bytes gauge\n"
        "envrun_memory_peak_bytes{bundle=\"redis\",instance=\"web1\"} 2147483648\n"
        "# HELP envrun_files_opened files opened (file)\n"
        "# TYPE envrun_files_opened counter\n"
        "envrun_files_opened{bundle=\"we\\\"ird\\\\b\",instance=\"q1\"} 3\n"
        "# HELP envrun_net_bytes_sent bytes sent on sockets (byte)\n"
        "# TYPE envrun_net_bytes_sent counter\n"
        "envrun_net_bytes_sent{bundle=\"redis\",instance=\"web1\"} 4000\n");
  // Halfway through web1's second interval: 1800 + 3600 / 2.
  CHECK_THAT(prometheus_text(l, T0 + 60 * M).value(),
             Catch::Contains("envrun_cpu_user_seconds{bundle=\"redis\",instance=\"web1\"} 3600\n"));
}

TEST_CASE("export: the usage table in human units") {
  TempDir dir;
  auto opened = Ledger::open(dir.path + "/ledger.db");
  REQUIRE(opened.ok());
  Ledger& l = *opened;
  rec(l, "web1", "redis", {}, T0, T0 + H,
      {{Metric::CpuUserSeconds, 5400}, {Metric::MemoryByteSeconds, 2 * 3600 * GiB}, {Metric::MemoryPeakBytes, 1.5 * GiB},
       {Metric::NetBytesSent, 4000}, {Metric::IoBytesRead, 512}, {Metric::FilesOpened, 42}, {Metric::CpuSystemSeconds, 90}});
  rec(l, "web2", "redis", {}, T0, T0 + H, {{Metric::CpuUserSeconds, 600}}, true);
  auto t = usage_table(l, std::nullopt);
  REQUIRE(t.ok());
  CHECK(*t ==
        "INSTANCE  BUNDLE  STATUS  SINCE                 METRIC               QUANTITY\n"
        "web1      redis   live    2026-01-01T00:00:00Z  cpu_user_seconds     90.00 min\n"
        "web1      redis   live    2026-01-01T00:00:00Z  cpu_system_seconds   90.00 s\n"
        "web1      redis   live    2026-01-01T00:00:00Z  memory_byte_seconds  2.00 GiB-h\n"
        "web1      redis   live    2026-01-01T00:00:00Z  memory_peak_bytes    1.50 GiB\n"
        "web1      redis   live    2026-01-01T00:00:00Z  files_opened         42\n"
        "web1      redis   live    2026-01-01T00:00:00Z  io_bytes_read        512 B\n"
        "web1      redis   live    2026-01-01T00:00:00Z  net_bytes_sent       3.91 KiB\n");
  auto ended = usage_table(l, std::string("web2"));
  REQUIRE(ended.ok());
  CHECK_THAT(*ended, Catch::Contains("web2      redis   ended   2026-01-01T00:00:00Z  cpu_user_seconds  10.00 min\n"));
  auto missing = usage_table(l, std::string("nope"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::NotFound);
  CHECK(missing.error().message == "billing usage: nope: no such instance in the ledger " + dir.path + "/ledger.db");
}

TEST_CASE("export: RFC 3339 times") {
  CHECK(rfc3339(T0) == "2026-01-01T00:00:00Z");
  CHECK(rfc3339(T0 + 25 * H + 61001) == "2026-01-02T01:01:01.001Z");
  CHECK(rfc3339(-1) == "1969-12-31T23:59:59.999Z");
}
