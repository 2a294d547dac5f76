// AuditLog: append-only JSON lines.
#include "agent/api/audit.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <nlohmann/json.hpp>

#include "kernel/fs.hpp"
#include "kernel/log.hpp"

namespace envrun::agent::api {

Result<AuditLog*> AuditLog::open(const std::string& path) {
  auto* a = new AuditLog();
  a->path_ = path;
  a->fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!a->fd_) {
    delete a;
    return Error::sys(path);
  }
  ::fchmod(a->fd_.get(), 0600);
  return a;
}

Result<void> AuditLog::write(const AuditEntry& e) {
  nlohmann::ordered_json j{{"time", log::now_rfc3339()}, {"token", e.token}, {"remote", e.remote}, {"method", e.method},
                   {"path", e.path}, {"status", e.status}, {"message", e.message}};
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> g(mu_);
  if (::write(fd_.get(), line.data(), line.size()) != ssize_t(line.size())) return Error::sys("write " + path_);
  return ok();
}

Result<std::vector<std::string>> AuditLog::tail(size_t limit) const {
  auto text = ENVRUN_TRY(fs::read_file(path_));
  std::deque<std::string> last;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (nl > pos) last.emplace_back(text.substr(pos, nl - pos));
    if (last.size() > limit) last.pop_front();
    pos = nl + 1;
  }
  return std::vector<std::string>(last.begin(), last.end());
}

}  // namespace envrun::agent::api
