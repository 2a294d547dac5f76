// Reading one instance's cgroup accounting files through fds opened once (cgroup_usage.hpp).
#include "billing/cgroup_usage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "kernel/fs.hpp"

namespace envrun::billing {

namespace {

bool gone_errno(int e) { return e == ENOENT || e == ENODEV || e == ESRCH; }

Error file_error(const std::string& what, const std::string& path, int e) {
  return Error{e, gone_errno(e) ? ErrorKind::NotFound : ErrorKind::System,
               what + " " + path + ": " + std::strerror(e)};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// The directory of `path` in the v1 hierarchy of `ctrl`, or "" when not mounted / not there.
std::string v1_dir(const CgroupHierarchies& h, const char* ctrl, const std::string& path) {
  auto it = h.v1.find(ctrl);
  if (it == h.v1.end()) return "";
  std::string dir = fs::join(it->second, path);
  return fs::is_dir(dir) ? dir : "";
}

// `dir/name` opened, or an invalid KernelFile when the file does not exist (older kernel,
// controller not enabled). Empty dir: invalid.
Result<KernelFile> open_optional(const std::string& dir, const char* name) {
  if (dir.empty()) return KernelFile{};
  auto f = KernelFile::open(fs::join(dir, name));
  if (!f && f.error().sys_errno == ENOENT && fs::is_dir(dir)) return KernelFile{};
  return f;
}

}  // namespace

Result<KernelFile> KernelFile::open(std::string path, int flags) {
  KernelFile f;
  f.fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | flags));
  if (!f.fd_) return file_error("open", path, errno);
  f.path_ = std::move(path);
  return f;
}

Result<std::string_view> KernelFile::read(std::string& buf) const {
  if (buf.size() < 4096) buf.resize(4096);
  for (;;) {
    ssize_t n = ::pread(fd_.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return file_error("read", path_, errno);
    if (size_t(n) < buf.size()) return std::string_view(buf.data(), size_t(n));
    buf.resize(buf.size() * 2);  // filled: the content may be longer, read it again whole
  }
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  s = trim(s);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> keyed_u64(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.size() <= key.size() || line.substr(0, key.size()) != key) continue;
    char sep = line[key.size()];
    if (sep != ' ' && sep != '\t') continue;  // "user" must not match "user_usec"
    return parse_u64(line.substr(key.size()));
  }
  return std::nullopt;
}

Result<CgroupUsageReader> CgroupUsageReader::open(const CgroupHierarchies& h, const std::string& path) {
  CgroupUsageReader r;
  r.path_ = fs::normalize("/" + path);
  std::string unified = h.unified.empty() ? "" : fs::join(h.unified, r.path_);
  if (!unified.empty() && !fs::is_dir(unified)) unified.clear();
  std::string cpuacct = v1_dir(h, "cpuacct", r.path_);
  std::string memory = v1_dir(h, "memory", r.path_);
  std::string pids = v1_dir(h, "pids", r.path_);
  if (unified.empty() && cpuacct.empty() && memory.empty() && pids.empty())
    return Error{ENOENT, ErrorKind::NotFound, "cgroup " + r.path_ + ": not found in any hierarchy"};

  if (!cpuacct.empty()) {
    r.cpu_user_ = ENVRUN_TRY(open_optional(cpuacct, "cpuacct.usage_user"));
    r.cpu_sys_ = ENVRUN_TRY(open_optional(cpuacct, "cpuacct.usage_sys"));
    r.cpu_total_ = ENVRUN_TRY(open_optional(cpuacct, "cpuacct.usage"));
    if (r.cpu_user_.valid() && r.cpu_sys_.valid()) {
      r.cpu_source_ = CpuSource::V1Ns;
    } else {
      r.cpu_stat_ = ENVRUN_TRY(open_optional(cpuacct, "cpuacct.stat"));
      if (r.cpu_stat_.valid()) r.cpu_source_ = CpuSource::V1Ticks;
    }
  } else {
    r.cpu_stat_ = ENVRUN_TRY(open_optional(unified, "cpu.stat"));
    if (r.cpu_stat_.valid()) r.cpu_source_ = CpuSource::V2Stat;
  }
  long hz = ::sysconf(_SC_CLK_TCK);
  if (hz > 0) r.ns_per_tick_ = 1'000'000'000ull / uint64_t(hz);

  if (!memory.empty()) {
    r.mem_ = ENVRUN_TRY(open_optional(memory, "memory.usage_in_bytes"));
    r.mem_peak_ = ENVRUN_TRY(open_optional(memory, "memory.max_usage_in_bytes"));
  } else {
    r.mem_ = ENVRUN_TRY(open_optional(unified, "memory.current"));
    r.mem_peak_ = ENVRUN_TRY(open_optional(unified, "memory.peak"));
  }
  const std::string& tasks_dir = !pids.empty() ? pids : unified;
  r.tasks_ = ENVRUN_TRY(open_optional(tasks_dir, "pids.current"));
  r.tasks_peak_ = ENVRUN_TRY(open_optional(tasks_dir, "pids.peak"));

  std::string procs_dir = !unified.empty() ? unified : !pids.empty() ? pids : !memory.empty() ? memory : cpuacct;
  r.procs_ = ENVRUN_TRY(open_optional(procs_dir, "cgroup.procs"));
  return r;
}

Result<std::optional<uint64_t>> CgroupUsageReader::read_number(const KernelFile& f) {
  if (!f.valid()) return std::optional<uint64_t>{};
  auto text = ENVRUN_TRY(f.read(buf_));
  auto v = parse_u64(text);
  if (!v) return Error::make(ErrorKind::System, f.path() + ": not a number: \"" + std::string(trim(text)) + "\"");
  return v;
}

Result<void> CgroupUsageReader::read_cpu(CgroupCounters& out) {
  switch (cpu_source_) {
    case CpuSource::None:
      return ok();
    case CpuSource::V1Ns: {
      out.cpu_user_ns = ENVRUN_TRY(read_number(cpu_user_));
      out.cpu_system_ns = ENVRUN_TRY(read_number(cpu_sys_));
      // usage_user/usage_sys are sampled at the timer tick and lose whole ticks when the
      // group runs in slices shorter than a tick (a loaded machine: 0.06 s counted for
      // 0.34 s used). cpuacct.usage is charged at every context switch: it is the total,
      // split in the ticks' proportion.
      auto total = ENVRUN_TRY(read_number(cpu_total_));
      if (total) {
        uint64_t u = out.cpu_user_ns.value_or(0), s = out.cpu_system_ns.value_or(0);
        uint64_t user = u + s == 0 ? *total : uint64_t((long double)*total * u / (u + s));
        out.cpu_user_ns = user;
        out.cpu_system_ns = *total - user;
      }
      return ok();
    }
    case CpuSource::V1Ticks:
    case CpuSource::V2Stat: {
      bool v2 = cpu_source_ == CpuSource::V2Stat;
      auto text = ENVRUN_TRY(cpu_stat_.read(buf_));
      auto user = keyed_u64(text, v2 ? "user_usec" : "user");
      auto sys = keyed_u64(text, v2 ? "system_usec" : "system");
      if (!user || !sys)
        return Error::make(ErrorKind::System, cpu_stat_.path() + ": no " + (v2 ? "user_usec/system_usec" : "user/system") + " line");
      uint64_t scale = v2 ? 1000 : ns_per_tick_;
      out.cpu_user_ns = *user * scale;
      out.cpu_system_ns = *sys * scale;
      return ok();
    }
  }
  return ok();
}

Result<CgroupCounters> CgroupUsageReader::read() {
  CgroupCounters c;
  auto checked = [&](Result<void> r) -> Result<void> {
    if (!r) return std::move(r).error().with_context("cgroup " + path_);
    return ok();
  };
  auto number = [&](const KernelFile& f, std::optional<uint64_t>& out) -> Result<void> {
    auto v = read_number(f);
    if (!v) return std::move(v).error();
    out = *v;
    return ok();
  };
  ENVRUN_CHECK(checked(read_cpu(c)));
  ENVRUN_CHECK(checked(number(mem_, c.memory_bytes)));
  ENVRUN_CHECK(checked(number(mem_peak_, c.memory_peak_bytes)));
  ENVRUN_CHECK(checked(number(tasks_, c.tasks)));
  ENVRUN_CHECK(checked(number(tasks_peak_, c.tasks_peak)));
  return c;
}

Result<void> CgroupUsageReader::read_pids(std::vector<pid_t>& out) {
  out.clear();
  if (!procs_.valid()) return ok();
  auto r = procs_.read(buf_);
  if (!r) return std::move(r).error().with_context("cgroup " + path_);
  std::string_view text = *r;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    pid_t pid = 0;
    auto [q, ec] = std::from_chars(p, end, pid);
    if (ec != std::errc()) return Error::make(ErrorKind::System, procs_.path() + ": not a list of pids");
    out.push_back(pid);
    p = q;
    while (p < end && (*p == '\n' || *p == ' ')) ++p;
  }
  return ok();
}

std::vector<std::string> CgroupUsageReader::files() const {
  std::vector<std::string> out;
  for (const KernelFile* f : {&cpu_user_, &cpu_sys_, &cpu_stat_, &cpu_total_, &mem_, &mem_peak_, &tasks_, &tasks_peak_, &procs_})
    if (f->valid()) out.push_back(f->path());
  return out;
}

}  // namespace envrun::billing
