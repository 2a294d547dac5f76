// Internal to the ledger: a prepared statement that finalizes itself, and error messages
// that name the ledger file and the operation ("<path>: record web1: database is locked").
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kernel/result.hpp"

namespace envrun::billing::sql {

Error error(sqlite3* db, const std::string& where, int rc);
// Runs statements without results (DDL, PRAGMA setters, BEGIN/COMMIT).
Result<void> exec(sqlite3* db, const std::string& sql, const std::string& where);

class Stmt {
 public:
  static Result<Stmt> prepare(sqlite3* db, std::string_view sql, const std::string& where);

  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, double v);
  Stmt& bind(int i, std::string_view v);
  // A row: true; done: false.
  Result<bool> step();
  // Steps to the end (statements without rows).
  Result<void> run();
  Result<void> reset();

  int64_t i64(int col) const { return sqlite3_column_int64(st_.get(), col); }
  double f64(int col) const { return sqlite3_column_double(st_.get(), col); }
  bool is_null(int col) const { return sqlite3_column_type(st_.get(), col) == SQLITE_NULL; }
  std::string text(int col) const;

 private:
  struct Finalize {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  Stmt(sqlite3* db, sqlite3_stmt* st, std::string where) : db_(db), st_(st), where_(std::move(where)) {}
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, Finalize> st_;
  std::string where_;
  int bind_rc_ = SQLITE_OK;  // first bind failure, reported by step()
};

}  // namespace envrun::billing::sql
