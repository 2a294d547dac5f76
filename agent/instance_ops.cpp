#include "agent/instance_ops.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "ha/subprocess.hpp"
#include "kernel/fs.hpp"

namespace envrun::agent {

namespace {

std::string join_args(const std::vector<std::string>& a) {
  std::string s;
  for (const auto& w : a) s += (s.empty() ? "" : " ") + w;
  return s;
}

// The bytes of `path` from `offset` on, as one line (at most the last 400 characters).
std::string new_lines(const std::string& path, off_t offset) {
  auto text = fs::read_file(path);
  if (!text || off_t(text->size()) <= offset) return "";
  std::string s = text->substr(size_t(offset));
  if (s.size() > 400) s = s.substr(s.size() - 400);
  for (char& c : s)
    if (c == '\n') c = ';';
  while (!s.empty() && s.back() == ';') s.pop_back();
  return s;
}

}  // namespace

Result<void> InstanceOps::envrun(const std::vector<std::string>& args, int timeout_s, int out_fd) const {
  std::vector<std::string> argv{ha::self_exe(), "--root", state_};
  argv.insert(argv.end(), args.begin(), args.end());
  ha::SpawnSpec spec{argv, {}};
  if (out_fd >= 0) spec.fds = {{out_fd, 1}, {out_fd, 2}};
  auto child = ENVRUN_TRY(ha::Child::spawn(spec));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  bool killed = false;
  int status = ENVRUN_TRY(child.wait(200, [&] {
    if (!killed && std::chrono::steady_clock::now() > deadline) {
      ::kill(child.pid(), SIGKILL);
      killed = true;
    }
  }));
  std::string cmd = "envrun " + join_args(args);
  if (killed) return Error::make(ErrorKind::System, cmd + ": no answer within " + std::to_string(timeout_s) + " s (killed)");
  if (status != 0) return Error::make(ErrorKind::Generic, cmd + ": " + child.failure_text(status));
  return ok();
}

bool InstanceOps::exists(const std::string& id) const { return bool(store().load(id)); }

runtime::Status InstanceOps::status(const std::string& id) const {
  auto s = store();
  auto st = s.load(id);
  return st ? s.status(*st) : runtime::Status::Stopped;
}

Result<void> InstanceOps::stop_and_delete(const std::string& id, int grace_s) const {
  if (!exists(id)) return ok();
  auto s = status(id);
  if (s == runtime::Status::Running) {
    (void)envrun({"kill", id, "TERM"}, 10);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_s);
    while (status(id) != runtime::Status::Stopped && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return envrun({"delete", "-f", id}, 30);
}

Result<void> InstanceOps::start_from(const std::string& id, const std::string& bundle_dir, const std::string& log) const {
  UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!out) return Error::sys(log);
  off_t at = ::lseek(out.get(), 0, SEEK_END);
  auto r = envrun({"run", "-d", "-b", bundle_dir, id}, 60, out.get());
  if (!r) {
    std::string said = new_lines(log, at);
    return Error::make(r.error().kind, "envrun run -d -b " + bundle_dir + " " + id + ": " + (said.empty() ? r.error().message : said));
  }
  return ok();
}

Result<void> InstanceOps::checkpoint(const std::string& id, const std::string& image_dir) const {
  return envrun({"checkpoint", "--image-path", image_dir, id}, 300);
}

Result<void> InstanceOps::restore(const std::string& id, const std::string& bundle_dir, const std::string& image_dir) const {
  return envrun({"restore", "-d", "-b", bundle_dir, "--image-path", image_dir, id}, 300);
}

std::string InstanceOps::output_of(const std::string& id, const std::string& fallback) const {
  auto st = store().load(id);
  if (!st || st->pid <= 0) return fallback;
  char buf[4096];
  std::string link = "/proc/" + std::to_string(st->pid) + "/fd/1";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0 || buf[0] != '/') return fallback;
  std::string path(buf, size_t(n));
  struct stat sb;
  if (::stat(path.c_str(), &sb) < 0 || !S_ISREG(sb.st_mode)) return fallback;
  return path;
}

}  // namespace envrun::agent
