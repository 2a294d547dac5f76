// billing/ledger: real SQLite files in a temp dir. Opening (WAL, modes, schema version),
// recording (idempotent, overlaps refused, lives of a reused id, cursors), windows cut at
// their edges (Sum pro rata, Peak whole), two writers at once, and SIGKILLed writers.
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <thread>

#include "billing/ledger.hpp"
#include "kernel/fs.hpp"

using namespace envrun;
using namespace envrun::billing;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/envrun-ledger-XXXXXX";
    REQUIRE(::mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() { (void)fs::remove_tree(path); }
};

IntervalBatch batch(const std::string& id, int64_t start, int64_t end, std::vector<UsageRow> rows, std::string cursor = "",
                    const std::string& bundle = "redis") {
  IntervalBatch b;
  b.instance = {id, bundle, {{"team", "cache"}}};
  b.start_ms = start;
  b.end_ms = end;
  b.rows = std::move(rows);
  b.cursor = cursor.empty() ? "end=" + std::to_string(end) : cursor;
  return b;
}

Ledger open_ok(const std::string& path) {
  auto l = Ledger::open(path);
  if (!l) FAIL("open: " << l.error().message);
  return std::move(*l);
}

// One value of a pragma or query, through a connection of its own.
std::string query_text(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

double quantity_of(const std::vector<InstanceUsage>& u, const std::string& instance, Metric m) {
  for (const auto& life : u)
    if (life.instance.instance == instance)
      for (const auto& mq : life.metrics)
        if (mq.metric == m) return mq.quantity;
  return -1;  // absent
}

}  // namespace

TEST_CASE("ledger: open creates the file and its directories, WAL, schema version 1") {
  TempDir dir;
  std::string path = dir.path + "/a/b/ledger.db";
  {
    Ledger l = open_ok(path);
    CHECK(l.path() == path);
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);  // tests run as root
  CHECK(query_text(path, "PRAGMA journal_mode") == "wal");
  CHECK(query_text(path, "PRAGMA user_version") == "1");
  CHECK(query_text(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('instances','intervals','usage','cursors','exports')") == "5");
  // Reopening an existing ledger keeps it.
  Ledger again = open_ok(path);
  REQUIRE(again.record(batch("web1", 0, 1000, {{Metric::CpuUserSeconds, 1}})).ok());
}

TEST_CASE("ledger: a ledger of a newer schema version is refused") {
  TempDir dir;
  std::string path = dir.path + "/ledger.db";
  { Ledger l = open_ok(path); }
  query_text(path, "PRAGMA user_version=7");
  auto l = Ledger::open(path);
  REQUIRE_FALSE(l.ok());
  CHECK(l.error().kind == ErrorKind::State);
  CHECK(l.error().message == "ledger " + path + ": schema version 7 is newer than this envrun's (1); use a newer envrun to read it");
}

TEST_CASE("ledger: a file that is not a database is an error naming it") {
  TempDir dir;
  std::string path = dir.path + "/ledger.db";
  REQUIRE(fs::write_file(path, std::string(4096, 'x'), O_CREAT).ok());
  auto l = Ledger::open(path);
  REQUIRE_FALSE(l.ok());
  CHECK_THAT(l.error().message, Catch::StartsWith("ledger " + path + ": "));
  CHECK_THAT(l.error().message, Catch::Contains("not a database"));
}

TEST_CASE("ledger: default path under the data root") {
  REQUIRE(::geteuid() == 0);
  CHECK(default_ledger_path() == "/var/lib/envrun/billing/ledger.db");
  // An ordinary user: $XDG_DATA_HOME/envrun, else ~/.local/share/envrun.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setenv("XDG_DATA_HOME", "/x/data", 1);
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(1);
    std::string a = default_ledger_path();
    ::unsetenv("XDG_DATA_HOME");
    ::setenv("HOME", "/home/u", 1);
    std::string b = default_ledger_path() + "\n";
    a += "\n" + b;
    (void)!::write(fds[1], a.data(), a.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  char buf[512] = {};
  ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(n > 0);
  CHECK(std::string(buf, size_t(n)) == "/x/data/envrun/billing/ledger.db\n/home/u/.local/share/envrun/billing/ledger.db\n");
}

TEST_CASE("ledger: record stores rows, the instance and the cursor; the same interval again changes nothing") {
  TempDir dir;
  Ledger l = open_ok(dir.path + "/ledger.db");
  CHECK_FALSE(l.cursor("web1").value().has_value());
  auto b = batch("web1", 1000, 11000, {{Metric::CpuUserSeconds, 2.5}, {Metric::MemoryPeakBytes, 4096}}, "c1");
  REQUIRE(l.record(b).value() == RecordOutcome::Recorded);
  CHECK(l.cursor("web1").value() == std::optional<std::string>("c1"));
  CHECK(l.last_end("web1").value() == std::optional<int64_t>(11000));
  // Re-recorded (a collector retrying after a crash): nothing changes, not even the cursor.
  auto again = b;
  again.cursor = "c-other";
  again.rows[0].quantity = 99;
  REQUIRE(l.record(again).value() == RecordOutcome::AlreadyRecorded);
  CHECK(l.cursor("web1").value() == std::optional<std::string>("c1"));
  REQUIRE(l.record(batch("web1", 11000, 21000, {{Metric::CpuUserSeconds, 1.5}}, "c2")).value() == RecordOutcome::Recorded);
  CHECK(l.cursor("web1").value() == std::optional<std::string>("c2"));
  auto inst = l.instances().value();
  REQUIRE(inst.size() == 1);
  CHECK(inst[0].instance == "web1");
  CHECK(inst[0].bundle == "redis");
  CHECK(inst[0].labels == std::map<std::string, std::string>{{"team", "cache"}});
  CHECK(inst[0].first_ms == 1000);
  CHECK(inst[0].last_ms == 21000);
  CHECK_FALSE(inst[0].ended);
  auto life = l.lifetime_usage({}).value();
  CHECK(quantity_of(life, "web1", Metric::CpuUserSeconds) == 4.0);
  CHECK(quantity_of(life, "web1", Metric::MemoryPeakBytes) == 4096);
  auto latest = l.latest_usage({}).value();
  REQUIRE(latest.size() == 1);
  REQUIRE(latest[0].metrics.size() == 1);  // the latest interval had one row
  CHECK(latest[0].metrics[0].quantity == 1.5);
  CHECK(l.first_start().value() == std::optional<int64_t>(1000));
}

TEST_CASE("ledger: overlapping intervals and malformed batches are refused") {
  TempDir dir;
  Ledger l = open_ok(dir.path + "/ledger.db");
  REQUIRE(l.record(batch("web1", 10000, 20000, {{Metric::CpuUserSeconds, 1}})).ok());
  std::string w = "ledger " + dir.path + "/ledger.db: record web1: ";
  for (auto [s, e] : {std::pair<int64_t, int64_t>{15000, 25000}, {5000, 15000}, {10000, 30000}, {12000, 13000}, {0, 30000}}) {
    auto r = l.record(batch("web1", s, e, {{Metric::CpuUserSeconds, 1}}));
    INFO(s << " " << e);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::State);
    CHECK(r.error().message == w + "interval [" + std::to_string(s) + ", " + std::to_string(e) + ") overlaps the recorded [10000, 20000)");
  }
  // Adjacent on both sides is fine; another instance may use the same times.
  CHECK(l.record(batch("web1", 20000, 30000, {{Metric::CpuUserSeconds, 1}})).ok());
  CHECK(l.record(batch("web1", 0, 10000, {{Metric::CpuUserSeconds, 1}})).ok());
  CHECK(l.record(batch("web2", 10000, 20000, {{Metric::CpuUserSeconds, 1}})).ok());

  auto bad = [&](IntervalBatch b, const std::string& why) {
    auto r = l.record(b);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "ledger " + dir.path + "/ledger.db: record " + b.instance.instance + ": " + why);
  };
  bad(batch("web3", 5, 5, {}), "interval [5, 5) is empty");
  bad(batch("web3", 0, 10, {{Metric::CpuUserSeconds, 1}, {Metric::CpuUserSeconds, 2}}), "cpu_user_seconds appears twice in one interval");
  bad(batch("web3", 0, 10, {{Metric::IoBytesRead, -1}}), "io_bytes_read: quantity -1.000000 is not a finite number >= 0");
  bad(batch("web3", 0, 10, {{Metric::Count, 1}}), "metric number 17 is unknown");
  bad(batch("web3", 0, 10, {}, "", ""), "bundle name is empty");
  CHECK(l.cursor("web3").value() == std::nullopt);
}

TEST_CASE("ledger: a reused instance id starts a new life; overlaps are checked across lives") {
  TempDir dir;
  Ledger l = open_ok(dir.path + "/ledger.db");
  auto last = batch("web1", 0, 1000, {{Metric::CpuUserSeconds, 1}}, "old");
  last.final = true;
  REQUIRE(l.record(last).ok());
  CHECK(l.cursor("web1").value() == std::nullopt);  // the ended life's cursor is not the next one's
  CHECK(l.last_end("web1").value() == std::nullopt);
  REQUIRE(l.record(last).value() == RecordOutcome::AlreadyRecorded);  // a retried final interval
  auto r = l.record(batch("web1", 500, 1500, {{Metric::CpuUserSeconds, 1}}));
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::EndsWith("overlaps the recorded [0, 1000)"));
  REQUIRE(l.record(batch("web1", 2000, 3000, {{Metric::CpuUserSeconds, 5}}, "new", "nginx")).ok());
  CHECK(l.cursor("web1").value() == std::optional<std::string>("new"));
  auto inst = l.instances().value();
  REQUIRE(inst.size() == 2);
  CHECK((inst[0].bundle == "redis" && inst[0].ended && inst[0].last_ms == 1000));
  CHECK((inst[1].bundle == "nginx" && !inst[1].ended && inst[1].first_ms == 2000));
  UsageFilter live;
  live.live_only = true;
  auto u = l.lifetime_usage(live).value();
  REQUIRE(u.size() == 1);
  CHECK(u[0].instance.bundle == "nginx");
  CHECK(u[0].metrics[0].quantity == 5);
}

TEST_CASE("ledger: windows split Sum rows pro rata at their edges and count Peak rows whole") {
  TempDir dir;
  Ledger l = open_ok(dir.path + "/ledger.db");
  REQUIRE(l.record(batch("web1", 1000, 11000, {{Metric::CpuUserSeconds, 100}, {Metric::MemoryPeakBytes, 700}})).ok());
  REQUIRE(l.record(batch("web1", 11000, 21000, {{Metric::CpuUserSeconds, 40}, {Metric::MemoryPeakBytes, 300}})).ok());
  auto q = [&](int64_t from, int64_t to, Metric m) { return quantity_of(l.window_usage(from, to).value(), "web1", m); };
  // Inside, exactly on the edges, and cut.
  CHECK(q(1000, 11000, Metric::CpuUserSeconds) == 100);
  CHECK(q(1000, 21000, Metric::CpuUserSeconds) == 140);
  CHECK(q(0, 100000, Metric::CpuUserSeconds) == 140);
  CHECK(q(6000, 20000, Metric::CpuUserSeconds) == 50 + 36);
  CHECK(q(1000, 6000, Metric::CpuUserSeconds) == 50);
  CHECK(q(6000, 16000, Metric::CpuUserSeconds) == 50 + 20);
  CHECK(q(2000, 3000, Metric::CpuUserSeconds) == 10);  // inside one interval
  CHECK(q(10999, 11001, Metric::CpuUserSeconds) == Approx(0.01 + 0.004).epsilon(1e-12));
  // A window touching an interval only at its end or start does not see it.
  CHECK(q(0, 1000, Metric::CpuUserSeconds) == -1);
  CHECK(q(21000, 30000, Metric::CpuUserSeconds) == -1);
  CHECK(l.window_usage(11000, 11000).value().empty());
  // Peak: every row touching the window counts whole, the window takes the maximum.
  CHECK(q(1000, 6000, Metric::MemoryPeakBytes) == 700);
  CHECK(q(10999, 11001, Metric::MemoryPeakBytes) == 700);
  CHECK(q(11000, 12000, Metric::MemoryPeakBytes) == 300);
  CHECK(q(20999, 30000, Metric::MemoryPeakBytes) == 300);
  // Lifetime up to a time: pro rata too.
  UsageFilter until;
  until.until_ms = 16000;
  CHECK(quantity_of(l.lifetime_usage(until).value(), "web1", Metric::CpuUserSeconds) == 120);
}

TEST_CASE("ledger: two processes recording at the same time both succeed (busy timeout)") {
  TempDir dir;
  std::string path = dir.path + "/ledger.db";
  { Ledger l = open_ok(path); }
  constexpr int kIntervals = 150;
  std::vector<pid_t> kids;
  for (int k = 0; k < 2; ++k) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto l = Ledger::open(path);
      if (!l) ::_exit(2);
      std::string id = "w" + std::to_string(k);
      for (int i = 0; i < kIntervals; ++i)
        if (!l->record(batch(id, i * 1000, (i + 1) * 1000, {{Metric::CpuUserSeconds, 1}, {Metric::FilesOpened, 2}}))) ::_exit(3);
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  Ledger l = open_ok(path);
  auto u = l.lifetime_usage({}).value();
  CHECK(quantity_of(u, "w0", Metric::CpuUserSeconds) == kIntervals);
  CHECK(quantity_of(u, "w1", Metric::FilesOpened) == 2 * kIntervals);
}

namespace {

constexpr int64_t kStep = 1000;

// A collector-like writer: resumes after the interval its cursor names, then records one
// interval of every metric (quantity = the interval's number) after the other, forever.
[[noreturn]] void crash_writer(const std::string& path) {
  auto l = Ledger::open(path);
  if (!l) ::_exit(2);
  auto cur = l->cursor("crash1");
  if (!cur) ::_exit(3);
  int64_t start = cur->has_value() ? std::stoll(cur->value().substr(4)) : 0;
  for (;; start += kStep) {
    std::vector<UsageRow> rows;
    for (const auto& m : kMetrics) rows.push_back({m.metric, double(start / kStep)});
    if (!l->record(batch("crash1", start, start + kStep, rows))) ::_exit(4);
  }
}

}  // namespace

TEST_CASE("ledger: a writer SIGKILLed at random moments leaves whole intervals and a matching cursor") {
  TempDir dir;
  std::string path = dir.path + "/ledger.db";
  { Ledger l = open_ok(path); }
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(20, 150);
  int64_t before = 0;
  for (int round = 0; round < 6; ++round) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) crash_writer(path);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO("round " << round << " status " << status);
    REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));  // not an early exit of its own

    CHECK(query_text(path, "PRAGMA integrity_check") == "ok");
    int64_t n = std::stoll(query_text(path, "SELECT count(*) FROM intervals"));
    CHECK(n >= before);
    before = n;
    // Every interval has all its rows (17), no row is without its interval, no gaps.
    CHECK(query_text(path, "SELECT count(*) FROM (SELECT start_ms FROM usage GROUP BY start_ms HAVING count(*) != 17)") == "0");
    CHECK(query_text(path, "SELECT count(DISTINCT start_ms) FROM usage") == std::to_string(n));
    CHECK(query_text(path, "SELECT count(*) FROM intervals WHERE row_count != 17") == "0");
    if (n == 0) continue;
    CHECK(query_text(path, "SELECT MAX(end_ms) FROM intervals") == std::to_string(n * kStep));
    Ledger l = open_ok(path);
    CHECK(l.cursor("crash1").value() == std::optional<std::string>("end=" + std::to_string(n * kStep)));
    // Quantities: interval i holds i for every metric, so the Sum total is 0 + 1 + ... + n-1.
    auto u = l.lifetime_usage({}).value();
    CHECK(quantity_of(u, "crash1", Metric::FilesOpened) == double(n * (n - 1) / 2));
    CHECK(quantity_of(u, "crash1", Metric::MemoryPeakBytes) == double(n - 1));
  }
  CHECK(before > 0);  // the writers did get intervals in
}
