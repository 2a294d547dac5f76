#include "agent/files_in_use.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <sstream>

#include "agent/tree_copy.hpp"
#include "kernel/fs.hpp"

namespace envrun::agent {

namespace {

std::string link_of(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

// A path as the host shows it -> the path inside the container ("" when unusable).
std::string inside(const std::string& shown, const std::string& rootfs) {
  if (shown.empty() || shown[0] != '/') return "";  // pipe:[..], socket:[..], anon_inode:...
  const std::string deleted = " (deleted)";
  if (shown.size() > deleted.size() && shown.compare(shown.size() - deleted.size(), deleted.size(), deleted) == 0) return "";
  if (!rootfs.empty() && shown.rfind(rootfs + "/", 0) == 0) return shown.substr(rootfs.size());
  return shown;
}

void add_maps(pid_t pid, const std::string& rootfs, std::set<std::string>& out) {
  auto text = fs::read_file("/proc/" + std::to_string(pid) + "/maps");
  if (!text) return;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    // start-end perms offset dev inode   path
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    if (auto p = inside(line.substr(slash), rootfs); !p.empty()) out.insert(p);
  }
}

void add_fds(pid_t pid, const std::string& rootfs, std::set<std::string>& out) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& fd : fs::list_dir(dir))
    if (auto p = inside(link_of(dir + "/" + fd), rootfs); !p.empty()) out.insert(p);
  if (auto p = inside(link_of("/proc/" + std::to_string(pid) + "/exe"), rootfs); !p.empty()) out.insert(p);
}

}  // namespace

Result<std::set<std::string>> files_in_use(pid_t init_pid, const std::string& rootfs) {
  std::string ns = link_of("/proc/" + std::to_string(init_pid) + "/ns/pid");
  if (ns.empty()) return Error::sys("/proc/" + std::to_string(init_pid) + "/ns/pid");
  std::string host_ns = link_of("/proc/self/ns/pid");
  std::set<std::string> out;
  for (const auto& e : fs::list_dir("/proc")) {
    if (e.empty() || !std::isdigit(static_cast<unsigned char>(e[0]))) continue;
    pid_t pid = std::atoi(e.c_str());
    // The init alone when it shares the host's pid namespace; else every member.
    if (pid != init_pid && (ns == host_ns || link_of("/proc/" + e + "/ns/pid") != ns)) continue;
    add_maps(pid, rootfs, out);
    add_fds(pid, rootfs, out);
  }
  return out;
}

Result<std::vector<std::string>> changed_files(const std::set<std::string>& used, const std::string& old_rootfs,
                                               const std::string& new_rootfs) {
  std::vector<std::string> out;
  for (const auto& p : used) {
    struct stat st;
    if (::lstat((old_rootfs + p).c_str(), &st) < 0 || !S_ISREG(st.st_mode)) continue;
    auto same = same_file_contents(old_rootfs + p, new_rootfs + p);
    if (!same) return std::move(same).error();
    if (!*same) out.push_back(p);
  }
  return out;
}

}  // namespace envrun::agent
