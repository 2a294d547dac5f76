// Shared cgroupfs helpers and the manager factory. The v1 manager lives in cgroup_v1.cpp,
// the v2 manager in cgroup_v2.cpp, mount detection in cgroup_detect.cpp.
#include "runtime/cgroup.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>
#include <thread>

#include "kernel/fs.hpp"

namespace envrun::runtime {

std::unique_ptr<CgroupManager> CgroupManager::make(const CgroupMounts& mounts,
                                                   const std::string& path) {
  if (mounts.layout == CgroupLayout::V2) return cgroup_detail::make_v2(mounts, path, false);
  return cgroup_detail::make_v1(mounts, path, false, nullptr);
}

std::unique_ptr<CgroupManager> CgroupManager::make(const CgroupMounts& mounts, const std::string& path,
                                                   const oci::Resources* planned) {
  if (mounts.layout == CgroupLayout::V2) return cgroup_detail::make_v2(mounts, path, false);
  return cgroup_detail::make_v1(mounts, path, true, planned);
}

Result<bool> CgroupManager::is_frozen_at(const CgroupMounts& mounts, const std::string& path) {
  std::string p = fs::normalize("/" + path);
  auto missing = [](const std::string& d) {
    return Error{ENOENT, ErrorKind::System, "cgroup: " + d + " does not exist"};
  };
  auto v1_frozen = [&]() -> std::optional<bool> {  // nullopt: no freezer directory
    auto it = mounts.v1.find("freezer");
    if (it == mounts.v1.end()) return std::nullopt;
    auto s = cgroup_detail::read_knob(fs::join(it->second, p), "freezer.state");
    if (!s) return std::nullopt;
    return *s == "FROZEN";
  };
  if (mounts.layout == CgroupLayout::V1) {
    if (auto f = v1_frozen()) return *f;
    return missing(fs::join(mounts.v1.count("freezer") ? mounts.v1.at("freezer") : "freezer", p));
  }
  std::string dir = fs::join(mounts.unified, p);
  auto events = cgroup_detail::read_keyed(dir, "cgroup.events");
  if (events.empty()) return missing(dir);
  if (events["frozen"] == 1) return true;
  return mounts.layout == CgroupLayout::Hybrid && v1_frozen().value_or(false);
}

namespace cgroup_detail {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  s = trim(s);
  if (s == "max") return UINT64_MAX;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    // v1 may report negative numbers (-1 = unlimited): treat as "max".
    int64_t sv = 0;
    auto [q, ec2] = std::from_chars(s.data(), s.data() + s.size(), sv);
    if (ec2 == std::errc() && q == s.data() + s.size() && sv < 0) return UINT64_MAX;
    return std::nullopt;
  }
  return v;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// rmdir with retries while the cgroup is still populated (processes exiting): no pause when the
// first rmdir works, then pauses of 50 us doubling up to 10 ms.
Result<void> rmdir_retry(const std::string& dir) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (int pause_us = 50;; pause_us = std::min(pause_us * 2, 10000)) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return ok();
    if (errno != EBUSY || std::chrono::steady_clock::now() >= deadline)
      return Error::sys("cgroup: rmdir " + dir);
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
  }
}

// The sub-directories of a cgroup (its child cgroups), from readdir's d_type: no stat per file.
std::vector<std::string> child_cgroups(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      std::string child = fs::join(dir, e->d_name);
      is_dir = ::lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) out.push_back(fs::join(dir, e->d_name));
  }
  ::closedir(d);
  return out;
}

}  // namespace

std::string dev_key(int64_t major, int64_t minor) {
  return std::to_string(major) + ":" + std::to_string(minor);
}

Result<void> write_knob(const std::string& dir, const std::string& file, std::string_view value,
                        const std::string& field) {
  auto r = fs::write_file(fs::join(dir, file), value);
  if (r) return ok();
  int e = r.error().sys_errno;
  if (e == ENOENT && !fs::is_dir(dir))
    return Error{e, ErrorKind::System, field + ": cgroup " + dir + " does not exist"};
  if (e == ENOENT)
    return Error{e, ErrorKind::Config, field + ": " + file + ": not supported on this host"};
  std::string shown(value);
  if (e == EINVAL || e == ERANGE)
    return Error{e, ErrorKind::Config,
                 field + ": " + file + ": invalid value \"" + shown + "\": " + std::strerror(e)};
  return Error{e, ErrorKind::System,
               field + ": write \"" + shown + "\" to " + fs::join(dir, file) + ": " + std::strerror(e)};
}

Result<std::string> read_knob(const std::string& dir, const std::string& file) {
  auto r = fs::read_file(fs::join(dir, file));
  if (!r) return std::move(r).error();
  return std::string(trim(*r));
}

std::optional<uint64_t> read_u64(const std::string& dir, const std::string& file) {
  auto r = read_knob(dir, file);
  if (!r) return std::nullopt;
  return parse_u64(*r);
}

std::map<std::string, uint64_t> read_keyed(const std::string& dir, const std::string& file) {
  std::map<std::string, uint64_t> out;
  auto r = fs::read_file(fs::join(dir, file));
  if (!r) return out;
  std::string_view text = *r;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    if (auto v = parse_u64(line.substr(sp + 1))) out[std::string(line.substr(0, sp))] = *v;
  }
  return out;
}

static Result<void> check_not_root(const std::string& path) {
  if (fs::normalize("/" + path) == "/")
    return Error::make(ErrorKind::Config, "linux.cgroupsPath: the container's cgroup cannot be a hierarchy root");
  return ok();
}

Result<std::vector<std::string>> make_levels(const std::string& root, const std::string& path,
                                             const std::function<void(const std::string&)>& before) {
  ENVRUN_CHECK(check_not_root(path));
  std::string norm = fs::normalize("/" + path);
  std::string leaf = fs::join(root, norm);
  std::string parent = leaf.substr(0, leaf.rfind('/'));
  // Usually the parent exists (other containers live there): one mkdir.
  if (before && fs::is_dir(parent)) before(parent);
  if (::mkdir(leaf.c_str(), 0755) == 0) return std::vector<std::string>{leaf};
  if (errno == EEXIST) return std::vector<std::string>{};
  if (errno != ENOENT) return Error::sys("cgroup: mkdir " + leaf);
  std::vector<std::string> created;
  std::string cur = root;
  size_t i = 1;
  while (i < norm.size()) {
    size_t j = norm.find('/', i);
    if (j == std::string::npos) j = norm.size();
    if (j > i) {
      if (before) before(cur);
      cur = fs::join(cur, norm.substr(i, j - i));
      if (::mkdir(cur.c_str(), 0755) == 0) created.push_back(cur);
      else if (errno != EEXIST) return Error::sys("cgroup: mkdir " + cur);
    }
    i = j + 1;
  }
  return created;
}

Result<void> remove_cgroup(const std::string& dir) {
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return ok();  // the usual case: empty
  if (errno != EBUSY) return Error::sys("cgroup: rmdir " + dir);
  // Busy: child cgroups left over, or processes still exiting. Never descend into a root.
  auto parent = fs::normalize(dir + "/..");
  if (!fs::exists(parent + "/cgroup.procs"))  // dir is a hierarchy root (or not a cgroup)
    return Error::make(ErrorKind::System, "cgroup: refusing to remove " + dir + ": not a child cgroup");
  for (const auto& child : child_cgroups(dir)) ENVRUN_CHECK(remove_cgroup(child));
  return rmdir_retry(dir);
}

Result<void> remove_created_parents(const std::vector<std::string>& created,
                                    const std::string& leaf) {
  for (auto it = created.rbegin(); it != created.rend(); ++it) {
    if (*it == leaf) continue;
    if (::rmdir(it->c_str()) != 0 && errno != ENOENT) {
      if (errno == EBUSY || errno == ENOTEMPTY) continue;  // shared with another container
      return Error::sys("cgroup: rmdir " + *it);
    }
  }
  return ok();
}

static void collect_into(const std::string& dir, std::vector<pid_t>& out) {
  if (auto procs = fs::read_file(fs::join(dir, "cgroup.procs"))) {
    std::string_view text = *procs;
    while (!text.empty()) {
      auto nl = text.find('\n');
      auto line = trim(text.substr(0, nl));
      text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
      pid_t p = 0;
      auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), p);
      if (ec == std::errc() && p > 0) out.push_back(p);
    }
  }
  for (const auto& child : child_cgroups(dir)) collect_into(child, out);
}

Result<std::vector<pid_t>> collect_pids(const std::string& dir) {
  std::vector<pid_t> out;
  if (!fs::is_dir(dir)) return out;
  collect_into(dir, out);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool v2_frozen(const std::string& dir) { return read_keyed(dir, "cgroup.events")["frozen"] == 1; }

Result<void> move_processes(const std::function<Result<std::vector<pid_t>>()>& members,
                            const std::string& dir) {
  std::set<pid_t> gone;
  for (int round = 0; round < 100; ++round) {
    auto want = ENVRUN_TRY(members());
    auto have = ENVRUN_TRY(collect_pids(dir));
    bool moved = false;
    for (pid_t p : want) {
      if (gone.count(p) || std::binary_search(have.begin(), have.end(), p)) continue;
      auto r = fs::write_file(fs::join(dir, "cgroup.procs"), std::to_string(p));
      if (r) moved = true;
      else if (r.error().sys_errno == ESRCH) gone.insert(p);  // exited meanwhile
      else return std::move(r).error().with_context("cgroup: move process " + std::to_string(p) + " to " + dir);
    }
    if (!moved) return ok();
  }
  return Error{EAGAIN, ErrorKind::System, "cgroup: moving the container's processes to " + dir +
                                              ": still forking after 100 rounds"};
}

bool wait_until(int timeout_ms, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (int i = 0;; ++i) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    sleep_ms(i < 10 ? 1 : 10);
  }
}

}  // namespace cgroup_detail
}  // namespace envrun::runtime
