// Ledger: opening (file, pragmas, schema) and recording intervals. Queries: ledger_query.cpp.
#include "billing/ledger.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "billing/ledger_sqlite.hpp"
#include "kernel/fd.hpp"
#include "kernel/fs.hpp"
#include "kernel/process.hpp"

namespace envrun::billing {

namespace {

// Schema version 1. WITHOUT ROWID tables are clustered on their primary key: a life's
// intervals and rows are stored together, in time order.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE instances (
  id       INTEGER PRIMARY KEY,
  instance TEXT NOT NULL,
  bundle   TEXT NOT NULL,
  labels   TEXT NOT NULL,
  first_ms INTEGER NOT NULL,
  last_ms  INTEGER NOT NULL,
  ended    INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX instances_live ON instances(instance) WHERE ended = 0;
CREATE INDEX instances_by_name ON instances(instance, first_ms);
CREATE TABLE intervals (
  instance_id INTEGER NOT NULL REFERENCES instances(id),
  start_ms    INTEGER NOT NULL,
  end_ms      INTEGER NOT NULL,
  row_count   INTEGER NOT NULL,
  PRIMARY KEY (instance_id, start_ms)
) WITHOUT ROWID;
CREATE TABLE usage (
  instance_id INTEGER NOT NULL REFERENCES instances(id),
  metric      TEXT NOT NULL,
  start_ms    INTEGER NOT NULL,
  end_ms      INTEGER NOT NULL,
  quantity    REAL NOT NULL,
  PRIMARY KEY (instance_id, metric, start_ms)
) WITHOUT ROWID;
CREATE INDEX usage_by_end ON usage(end_ms);
CREATE TABLE cursors (
  instance_id INTEGER PRIMARY KEY REFERENCES instances(id),
  cursor      TEXT NOT NULL
);
CREATE TABLE exports (
  stream         TEXT PRIMARY KEY,
  end_ms         INTEGER NOT NULL,
  exported_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? std::string() : path.substr(0, slash);
}

Result<int> user_version(sqlite3* db, const std::string& where) {
  auto st = ENVRUN_TRY(sql::Stmt::prepare(db, "PRAGMA user_version", where));
  if (!ENVRUN_TRY(st.step())) return 0;
  return int(st.i64(0));
}

}  // namespace

std::string default_ledger_path() {
  std::string root;
  if (::geteuid() == 0) {
    root = "/var/lib/envrun";
  } else if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg == '/') {
    root = std::string(xdg) + "/envrun";
  } else {
    root = proc::home_dir() + "/.local/share/envrun";
  }
  return root + "/billing/ledger.db";
}

Result<Ledger> Ledger::open(const std::string& path, Options options) {
  if (path.empty()) return Error::make(ErrorKind::Usage, "ledger: empty path");
  bool root = ::geteuid() == 0;
  if (std::string dir = parent_dir(path); !dir.empty()) {
    auto made = fs::mkdir_p(dir, root ? 0755 : 0700);
    if (!made) return std::move(made).error().with_context("ledger " + path);
  }
  // Created here so that its mode is ours; SQLite gives the -wal and -shm files the
  // database file's mode.
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, root ? 0644 : 0600));
  if (!fd) return Error::sys("ledger " + path + ": open");
  fd.reset();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  Ledger ledger(path, db);  // owns db, also when the open failed
  if (rc != SQLITE_OK) return sql::error(db, ledger.where("open"), rc);
  ENVRUN_CHECK(ledger.configure(options));
  ENVRUN_CHECK(ledger.migrate());
  return ledger;
}

Ledger::Ledger(Ledger&& o) noexcept : path_(std::move(o.path_)), db_(std::exchange(o.db_, nullptr)) {}

Ledger& Ledger::operator=(Ledger&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close_v2(db_);
    path_ = std::move(o.path_);
    db_ = std::exchange(o.db_, nullptr);
  }
  return *this;
}

Ledger::~Ledger() {
  if (db_) sqlite3_close_v2(db_);
}

std::string Ledger::where(const std::string& what) const { return "ledger " + path_ + ": " + what; }

Result<void> Ledger::configure(const Options& options) {
  // Several writers: the collector, `envrun delete` recording a final interval, an export
  // taking its mark. A writer waits for the others this long before giving up.
  sqlite3_busy_timeout(db_, options.busy_timeout_ms);
  auto mode = ENVRUN_TRY(sql::Stmt::prepare(db_, "PRAGMA journal_mode=WAL", where("journal_mode")));
  if (!ENVRUN_TRY(mode.step()) || mode.text(0) != "wal")
    return Error::make(ErrorKind::System, where("journal_mode: WAL is not available on this file system (got " + mode.text(0) + ")"));
  // WAL + synchronous=NORMAL: each commit is appended to the WAL and is atomic; the WAL is
  // fsynced at checkpoints, not at every commit. A killed process loses nothing committed
  // (the page cache keeps it); a power cut may lose the commits since the last checkpoint,
  // never the ledger's consistency (durable to the last checkpoint, never corrupt). The
  // collector re-records from its cursor what such a cut takes back.
  ENVRUN_CHECK(sql::exec(db_, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", where("pragmas")));
  return ok();
}

Result<void> Ledger::migrate() {
  int version = ENVRUN_TRY(user_version(db_, where("schema version")));
  auto newer = [&](int v) {
    return Error::make(ErrorKind::State, where("schema version " + std::to_string(v) + " is newer than this envrun's (" +
                                               std::to_string(kLedgerSchemaVersion) + "); use a newer envrun to read it"));
  };
  if (version > kLedgerSchemaVersion) return newer(version);
  if (version == kLedgerSchemaVersion) return ok();
  Transaction tx = ENVRUN_TRY(transaction(true));
  version = ENVRUN_TRY(user_version(db_, where("schema version")));  // another process may have won
  if (version > kLedgerSchemaVersion) return newer(version);
  if (version == 0) {
    ENVRUN_CHECK(sql::exec(db_, kSchemaV1, where("create schema")));
    ENVRUN_CHECK(sql::exec(db_, "PRAGMA user_version=" + std::to_string(kLedgerSchemaVersion), where("schema version")));
  }
  return tx.commit();
}

namespace {

Result<void> validate(const IntervalBatch& b, const std::string& where) {
  auto bad = [&](const std::string& why) { return Error::make(ErrorKind::Generic, where + ": " + why); };
  if (b.instance.instance.empty()) return bad("instance id is empty");
  if (b.instance.bundle.empty()) return bad("bundle name is empty");
  if (b.end_ms <= b.start_ms)
    return bad("interval [" + std::to_string(b.start_ms) + ", " + std::to_string(b.end_ms) + ") is empty");
  std::set<Metric> seen;
  for (const auto& row : b.rows) {
    if (size_t(row.metric) >= kMetrics.size()) return bad("metric number " + std::to_string(int(row.metric)) + " is unknown");
    std::string name(info(row.metric).name);
    if (!seen.insert(row.metric).second) return bad(name + " appears twice in one interval");
    if (!std::isfinite(row.quantity) || row.quantity < 0)
      return bad(name + ": quantity " + std::to_string(row.quantity) + " is not a finite number >= 0");
  }
  return ok();
}

// The recorded interval of the instance id (any life) that could overlap the batch: the
// last one starting before its end (intervals never overlap each other).
Result<RecordOutcome> check_overlap(sqlite3* db, const IntervalBatch& b, const std::string& where) {
  auto st = ENVRUN_TRY(sql::Stmt::prepare(db, R"sql(
    SELECT v.start_ms, v.end_ms FROM intervals v JOIN instances n ON n.id = v.instance_id
     WHERE n.instance = ?1 AND v.start_ms < ?2 ORDER BY v.start_ms DESC LIMIT 1)sql", where));
  st.bind(1, b.instance.instance).bind(2, b.end_ms);
  if (!ENVRUN_TRY(st.step())) return RecordOutcome::Recorded;
  int64_t start = st.i64(0), end = st.i64(1);
  if (start == b.start_ms && end == b.end_ms) return RecordOutcome::AlreadyRecorded;
  if (end <= b.start_ms) return RecordOutcome::Recorded;
  return Error::make(ErrorKind::State, where + ": interval [" + std::to_string(b.start_ms) + ", " + std::to_string(b.end_ms) +
                                           ") overlaps the recorded [" + std::to_string(start) + ", " + std::to_string(end) + ")");
}

// The live row of the instance id, created or brought up to date; returns its id.
Result<int64_t> upsert_life(sqlite3* db, const IntervalBatch& b, const std::string& where) {
  std::string labels = nlohmann::json(b.instance.labels).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto find = ENVRUN_TRY(sql::Stmt::prepare(db, "SELECT id FROM instances WHERE instance = ?1 AND ended = 0", where));
  find.bind(1, b.instance.instance);
  if (ENVRUN_TRY(find.step())) {
    int64_t id = find.i64(0);
    auto up = ENVRUN_TRY(sql::Stmt::prepare(db, R"sql(
      UPDATE instances SET bundle = ?2, labels = ?3, first_ms = MIN(first_ms, ?4), last_ms = MAX(last_ms, ?5), ended = ?6
       WHERE id = ?1)sql", where));
    up.bind(1, id).bind(2, b.instance.bundle).bind(3, labels).bind(4, b.start_ms).bind(5, b.end_ms).bind(6, int64_t(b.final));
    ENVRUN_CHECK(up.run());
    return id;
  }
  auto ins = ENVRUN_TRY(sql::Stmt::prepare(db, R"sql(
    INSERT INTO instances (instance, bundle, labels, first_ms, last_ms, ended) VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql", where));
  ins.bind(1, b.instance.instance).bind(2, b.instance.bundle).bind(3, labels).bind(4, b.start_ms).bind(5, b.end_ms).bind(6, int64_t(b.final));
  ENVRUN_CHECK(ins.run());
  return int64_t(sqlite3_last_insert_rowid(db));
}

Result<void> insert_rows(sqlite3* db, int64_t id, const IntervalBatch& b, const std::string& where) {
  auto row = ENVRUN_TRY(sql::Stmt::prepare(db, R"sql(
    INSERT OR IGNORE INTO usage (instance_id, metric, start_ms, end_ms, quantity) VALUES (?1, ?2, ?3, ?4, ?5))sql", where));
  for (const auto& r : b.rows) {
    row.bind(1, id).bind(2, info(r.metric).name).bind(3, b.start_ms).bind(4, b.end_ms).bind(5, r.quantity);
    ENVRUN_CHECK(row.run());
    ENVRUN_CHECK(row.reset());
  }
  auto iv = ENVRUN_TRY(sql::Stmt::prepare(db, R"sql(
    INSERT INTO intervals (instance_id, start_ms, end_ms, row_count) VALUES (?1, ?2, ?3, ?4))sql", where));
  iv.bind(1, id).bind(2, b.start_ms).bind(3, b.end_ms).bind(4, int64_t(b.rows.size()));
  ENVRUN_CHECK(iv.run());
  auto cur = ENVRUN_TRY(sql::Stmt::prepare(db, R"sql(
    INSERT INTO cursors (instance_id, cursor) VALUES (?1, ?2)
      ON CONFLICT (instance_id) DO UPDATE SET cursor = excluded.cursor)sql", where));
  cur.bind(1, id).bind(2, b.cursor);
  return cur.run();
}

}  // namespace

Result<RecordOutcome> Ledger::record(const IntervalBatch& batch) {
  std::string w = where("record " + batch.instance.instance);
  ENVRUN_CHECK(validate(batch, w));
  Transaction tx = ENVRUN_TRY(transaction(true));
  RecordOutcome outcome = ENVRUN_TRY(check_overlap(db_, batch, w));
  if (outcome == RecordOutcome::AlreadyRecorded) return outcome;  // rolled back: nothing written
  int64_t id = ENVRUN_TRY(upsert_life(db_, batch, w));
  ENVRUN_CHECK(insert_rows(db_, id, batch, w));
  ENVRUN_CHECK(tx.commit());
  return outcome;
}

}  // namespace envrun::billing
