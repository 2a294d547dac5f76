// Mover::move (drain_mover.hpp).
#include "agent/drain_mover.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "ha/subprocess.hpp"
#include "kernel/fs.hpp"
#include "runtime/state.hpp"

namespace envrun::agent {

namespace {

std::string ms_text(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  return buf;
}

// The report of `migrate --json` (one line on its stdout), read after it exited.
std::string report_text(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && out.size() < 65536) out.append(buf, size_t(n));
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "";
  return "pid " + std::to_string(j.value("target_pid", 0LL)) + " there; downtime " +
         ms_text(j.value("downtime_ms", 0.0)) + ", total " + ms_text(j.value("total_ms", 0.0));
}

}  // namespace

std::set<std::string> Mover::busy() {
  std::lock_guard<std::mutex> lk(mu_);
  return busy_;
}

MoveOutcome Mover::move(const PlannedMove& m, const std::function<void()>& tick) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!busy_.insert(m.id).second) return {false, "another migration of it is under way"};
  }
  auto out = run(m, tick);
  std::lock_guard<std::mutex> lk(mu_);
  busy_.erase(m.id);
  return out;
}

MoveOutcome Mover::run(const PlannedMove& m, const std::function<void()>& tick) {
  runtime::StateStore store(root_.state());
  auto st = store.load(m.id);
  if (!st) return {false, st.error().message};
  if (store.status(*st) != runtime::Status::Running)
    return {false, std::string("it is ") + runtime::status_name(store.status(*st)) + ", not running"};
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return {false, "pipe: " + std::string(std::strerror(errno))};
  UniqueFd out_r(p[0]), out_w(p[1]);
  std::vector<std::string> argv{ha::self_exe(), "--root", root_.state()};
  argv.insert(argv.end(), globals_.begin(), globals_.end());
  argv.insert(argv.end(), {"migrate", m.id, "--to", m.to, "--psk-file", m.psk_file, "--json"});
  if (m.tcp_established) argv.push_back("--tcp-established");
  auto child = ha::Child::spawn({argv, {{out_w.get(), 1}}});
  if (!child) return {false, child.error().message};
  out_w.reset();
  auto status = child->wait(2000, tick);
  if (!status) return {false, status.error().message};
  if (*status != 0) return {false, child->failure_text(*status)};
  // Committed: the container left this host. The agent's own copy of its bundle (one it
  // received in a migration) goes too; a bundle elsewhere is the user's.
  if (st->bundle == root_.bundle(m.id)) (void)fs::remove_tree(st->bundle);
  std::string report = report_text(out_r.get());
  return {true, "moved to " + m.to + (report.empty() ? "" : " (" + report + ")")};
}

}  // namespace envrun::agent
