// /proc parsing for the dump (proc_read.hpp).
#include "ckpt/proc_read.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "kernel/fs.hpp"

namespace envrun::ckpt::proc {

namespace {

std::string base(pid_t pid) { return "/proc/" + std::to_string(pid); }

std::string link(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n < 0 ? std::string() : std::string(buf, size_t(n));
}

// Last number on a "Key:\t..." line of status (the innermost pid namespace's value).
std::vector<std::string> field(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream ls(line.substr(key.size() + 1));
    std::vector<std::string> out;
    std::string w;
    while (ls >> w) out.push_back(w);
    return out;
  }
  return {};
}

std::vector<uint32_t> numbers(const std::vector<std::string>& v) {
  std::vector<uint32_t> out;
  for (const auto& s : v) out.push_back(uint32_t(std::strtoul(s.c_str(), nullptr, 10)));
  return out;
}

}  // namespace

Result<std::vector<pid_t>> threads(pid_t pid) {
  std::vector<pid_t> out;
  for (const auto& n : fs::list_dir(base(pid) + "/task")) out.push_back(pid_t(std::atoi(n.c_str())));
  if (out.empty()) return Error::sys("/proc/" + std::to_string(pid) + "/task", ESRCH);
  std::sort(out.begin(), out.end());
  auto main = std::find(out.begin(), out.end(), pid);
  if (main != out.end()) std::rotate(out.begin(), main, main + 1);
  return out;
}

std::vector<pid_t> children(pid_t pid) {
  std::vector<pid_t> out;
  for (const auto& t : fs::list_dir(base(pid) + "/task")) {
    auto text = fs::read_file(base(pid) + "/task/" + t + "/children");
    if (!text) continue;
    std::istringstream in(*text);
    pid_t c;
    while (in >> c) out.push_back(c);
  }
  return out;
}

std::vector<pid_t> tree(pid_t root) {
  std::vector<pid_t> out{root};
  for (size_t i = 0; i < out.size(); ++i)
    for (pid_t c : children(out[i])) out.push_back(c);
  return out;
}

Result<void> read_identity(pid_t pid, ProcessCore& p) {
  auto status = fs::read_file(base(pid) + "/status");
  if (!status) return Error::sys("/proc/" + std::to_string(pid) + "/status", ESRCH);
  auto last = [&](const char* k) -> pid_t {
    auto v = field(*status, k);
    return v.empty() ? 0 : pid_t(std::atoi(v.back().c_str()));
  };
  p.host_pid = pid;
  p.pid = last("NSpid");
  p.pgid = last("NSpgid");
  p.sid = last("NSsid");
  p.ppid = last("PPid");
  auto state = field(*status, "State");
  p.zombie = !state.empty() && state[0] == "Z";
  p.uids = numbers(field(*status, "Uid"));
  p.gids = numbers(field(*status, "Gid"));
  p.groups = numbers(field(*status, "Groups"));
  auto hex = [&](const char* k) -> uint64_t {
    auto v = field(*status, k);
    return v.empty() ? 0 : std::strtoull(v[0].c_str(), nullptr, 16);
  };
  p.cap_inh = hex("CapInh"), p.cap_prm = hex("CapPrm"), p.cap_eff = hex("CapEff");
  p.cap_bnd = hex("CapBnd"), p.cap_amb = hex("CapAmb");
  auto nnp = field(*status, "NoNewPrivs");
  p.no_new_privs = !nnp.empty() && nnp[0] == "1";
  auto sec = field(*status, "Seccomp");
  p.seccomp_mode = sec.empty() ? 0 : std::atoi(sec[0].c_str());
  auto um = field(*status, "Umask");
  if (!um.empty()) p.umask = uint32_t(std::strtoul(um[0].c_str(), nullptr, 8));
  auto comm = fs::read_file(base(pid) + "/comm");
  if (comm) p.comm = comm->substr(0, comm->find('\n'));
  auto stat = fs::read_file(base(pid) + "/stat");
  if (!stat) return Error::sys("/proc/" + std::to_string(pid) + "/stat", ESRCH);
  // fields after the comm's closing parenthesis, numbered from 3 (state)
  std::istringstream in(stat->substr(stat->rfind(')') + 2));
  std::vector<std::string> f(3);
  std::string w;
  while (in >> w) f.push_back(w);
  auto u = [&](size_t i) -> uint64_t { return i < f.size() ? std::strtoull(f[i].c_str(), nullptr, 10) : 0; };
  p.start_code = u(26), p.end_code = u(27), p.start_stack = u(28);
  p.start_data = u(45), p.end_data = u(46), p.start_brk = u(47);
  p.arg_start = u(48), p.arg_end = u(49), p.env_start = u(50), p.env_end = u(51);
  p.exit_code = int(u(52));
  if (p.zombie) return ok();
  p.exe = link(base(pid) + "/exe");
  p.cwd = link(base(pid) + "/cwd");
  const std::string deleted = " (deleted)";
  if (p.cwd.size() > deleted.size() && p.cwd.compare(p.cwd.size() - deleted.size(), deleted.size(), deleted) == 0) {
    p.cwd.resize(p.cwd.size() - deleted.size());
    p.cwd_deleted = true;
  }
  p.root = link(base(pid) + "/root");
  return ok();
}

pid_t ns_tid(pid_t pid, pid_t tid) {
  auto status = fs::read_file(base(pid) + "/task/" + std::to_string(tid) + "/status");
  if (!status) return tid;
  auto v = field(*status, "NSpid");
  return v.empty() ? tid : pid_t(std::atoi(v.back().c_str()));
}

Result<std::vector<Vma>> read_maps(pid_t pid) {
  auto text = fs::read_file(base(pid) + "/maps");
  if (!text) return Error::sys("/proc/" + std::to_string(pid) + "/maps", ESRCH);
  std::vector<Vma> out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    Vma m;
    char perms[8] = {};
    unsigned long long start, end, off, ino;
    unsigned maj, min;
    int name_at = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj, &min, &ino,
                    &name_at) < 7)
      return Error::make(ErrorKind::System, "/proc/" + std::to_string(pid) + "/maps: cannot parse \"" + line + "\"");
    m.start = start, m.end = end, m.offset = off, m.ino = ino, m.dev = (uint64_t(maj) << 20) | min;
    m.prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
    m.shared = perms[3] == 's';
    std::string name = name_at > 0 && size_t(name_at) <= line.size() ? line.substr(size_t(name_at)) : "";
    if (name == "[vdso]") m.kind = Vma::Kind::Vdso;
    else if (name == "[vvar]") m.kind = Vma::Kind::Vvar;
    else if (name == "[vvar_vclock]") m.kind = Vma::Kind::VvarVclock;
    else if (name == "[vsyscall]") m.kind = Vma::Kind::Vsyscall;
    else if (!name.empty() && name[0] == '/' && ino != 0) {
      m.kind = m.shared && name.rfind("/dev/zero", 0) == 0 ? Vma::Kind::SharedAnon : Vma::Kind::File;
      if (name.rfind("/SYSV", 0) == 0) m.kind = Vma::Kind::SharedAnon;
      m.path = name;
    } else if (m.shared) {
      m.kind = Vma::Kind::SharedAnon;  // MAP_SHARED|MAP_ANONYMOUS shows "/dev/zero (deleted)" with an inode
    }
    if (m.kind == Vma::Kind::Anon || m.kind == Vma::Kind::SharedAnon) m.name = name;
    m.grows_down = name == "[stack]";
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<uint64_t>> read_auxv(pid_t pid) {
  auto text = fs::read_file(base(pid) + "/auxv");
  if (!text) return Error::sys("/proc/" + std::to_string(pid) + "/auxv", ESRCH);
  std::vector<uint64_t> out(text->size() / 8);
  std::memcpy(out.data(), text->data(), out.size() * 8);
  return out;
}

std::vector<int> own_mount_ids() {
  std::vector<int> out;
  auto text = fs::read_file("/proc/self/mountinfo");
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) out.push_back(std::atoi(line.c_str()));
  return out;
}

Result<std::vector<FdInfo>> read_fds(pid_t pid) {
  std::vector<FdInfo> out;
  for (const auto& n : fs::list_dir(base(pid) + "/fd")) {
    FdInfo f;
    f.fd = std::atoi(n.c_str());
    f.link = link(base(pid) + "/fd/" + n);
    auto info = fs::read_file(base(pid) + "/fdinfo/" + n);
    if (!info) continue;  // closed meanwhile: the process is frozen, so it was a race with exit
    auto pos = field(*info, "pos");
    auto flags = field(*info, "flags");
    if (!pos.empty()) f.pos = std::strtoll(pos[0].c_str(), nullptr, 10);
    if (!flags.empty()) f.flags = int(std::strtol(flags[0].c_str(), nullptr, 8));
    auto mnt = field(*info, "mnt_id");
    if (!mnt.empty()) f.mnt_id = std::atoi(mnt[0].c_str());
    f.text = std::move(*info);
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(), [](const FdInfo& a, const FdInfo& b) { return a.fd < b.fd; });
  return out;
}

}  // namespace envrun::ckpt::proc
