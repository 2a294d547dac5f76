// SQLite statements and transactions for the ledger (ledger_sqlite.hpp, Transaction).
#include "billing/ledger_sqlite.hpp"

#include "billing/ledger.hpp"

namespace envrun::billing {

namespace sql {

Error error(sqlite3* db, const std::string& where, int rc) {
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  // A busy ledger after the whole busy timeout: say who is waiting on what.
  if ((rc & 0xff) == SQLITE_BUSY) msg = "the ledger stayed locked by another writer for the whole busy timeout";
  return Error::make(ErrorKind::System, where + ": " + msg);
}

Result<void> exec(sqlite3* db, const std::string& sql, const std::string& where) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
  if (rc == SQLITE_OK) return ok();
  Error e = error(db, where, rc);
  sqlite3_free(msg);
  return e;
}

Result<Stmt> Stmt::prepare(sqlite3* db, std::string_view text, const std::string& where) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, text.data(), int(text.size()), &st, nullptr);
  if (rc != SQLITE_OK) return error(db, where, rc);
  return Stmt(db, st, where);
}

Stmt& Stmt::bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(st_.get(), i, v);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::bind(int i, double v) {
  int rc = sqlite3_bind_double(st_.get(), i, v);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::bind(int i, std::string_view v) {
  int rc = sqlite3_bind_text(st_.get(), i, v.data(), int(v.size()), SQLITE_TRANSIENT);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Stmt::step() {
  if (bind_rc_ != SQLITE_OK) return error(db_, where_, bind_rc_);
  int rc = sqlite3_step(st_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return error(db_, where_, rc);
}

Result<void> Stmt::run() {
  while (ENVRUN_TRY(step())) {
  }
  return ok();
}

Result<void> Stmt::reset() {
  sqlite3_reset(st_.get());
  sqlite3_clear_bindings(st_.get());
  bind_rc_ = SQLITE_OK;
  return ok();
}

std::string Stmt::text(int col) const {
  const unsigned char* p = sqlite3_column_text(st_.get(), col);
  return p ? std::string(reinterpret_cast<const char*>(p), size_t(sqlite3_column_bytes(st_.get(), col))) : std::string();
}

}  // namespace sql

Result<Transaction> Ledger::transaction(bool write) {
  if (!sqlite3_get_autocommit(db_)) return Transaction(db_, false, where("transaction"));
  ENVRUN_CHECK(sql::exec(db_, write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED", where(write ? "begin write" : "begin read")));
  return Transaction(db_, true, where("transaction"));
}

Transaction::Transaction(Transaction&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)), owner_(o.owner_), where_(std::move(o.where_)) {}

Transaction::~Transaction() {
  // A failed statement may already have ended the transaction (SQLite rolls back on some
  // errors); only roll back what is still open.
  if (db_ && owner_ && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Result<void> Transaction::commit() {
  sqlite3* db = std::exchange(db_, nullptr);
  if (!db || !owner_) return ok();
  if (sqlite3_get_autocommit(db)) return Error::make(ErrorKind::System, where_ + ": the transaction was rolled back by an earlier error");
  auto r = sql::exec(db, "COMMIT", where_ + ": commit");
  if (!r && !sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return r;
}

}  // namespace envrun::billing
