// The audit log: DIR/api/audit.log (mode 0600), one JSON object per line:
//   {"time": "...Z", "token": "ci", "remote": "unix" | "10.0.0.1:5123", "method": "POST",
//    "path": "/v1/instances", "status": 201, "message": "created web1"}
// Every non-GET request and every refused one (401, 403) is written; the secret never is.
#pragma once
#include <mutex>
#include <string>
#include <vector>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::agent::api {

struct AuditEntry {
  std::string token;  // the token's name, "" when none was valid
  std::string remote, method, path;
  int status = 0;
  std::string message;
};

class AuditLog {
 public:
  static Result<AuditLog*> open(const std::string& path);  // caller owns the pointer
  // Appends one line (O_APPEND, one write(2)); a failure is returned, not thrown.
  Result<void> write(const AuditEntry& e);
  // The last `limit` lines, oldest first (each a JSON object text).
  Result<std::vector<std::string>> tail(size_t limit) const;
  const std::string& path() const { return path_; }

 private:
  AuditLog() = default;
  std::string path_;
  UniqueFd fd_;
  std::mutex mu_;
};

}  // namespace envrun::agent::api
