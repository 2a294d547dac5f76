#include "kernel/process.hpp"

#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernel/fs.hpp"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

namespace envrun::proc {

Result<CloneResult> clone3_fork(uint64_t flags, bool want_pidfd, int cgroup_fd) {
  struct clone_args args;
  std::memset(&args, 0, sizeof args);
  int pidfd = -1;
  args.flags = flags;
  if (want_pidfd) {
    args.flags |= CLONE_PIDFD;
    args.pidfd = uint64_t(uintptr_t(&pidfd));
  }
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = uint64_t(cgroup_fd);
  }
  // The kernel refuses an exit signal with CLONE_PARENT (the child inherits ours).
  args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
  long r = ::syscall(SYS_clone3, &args, sizeof args);
  if (r < 0) return Error::sys("clone3");
  CloneResult out;
  out.pid = pid_t(r);
  if (r > 0 && want_pidfd) out.pidfd = UniqueFd(pidfd);
  return out;
}

Result<UniqueFd> pidfd_open(pid_t pid) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return Error::sys("pidfd_open " + std::to_string(pid));
  return UniqueFd(int(fd));
}

Result<void> pidfd_signal(int pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0) return Error::sys("pidfd_send_signal");
  return ok();
}

// /proc/<pid>/stat: "pid (comm) S ppid ..." — comm may contain spaces and ')'.
static bool read_stat(pid_t pid, char* state, uint64_t* starttime) {
  auto text = fs::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return false;
  auto close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) return false;
  const char* p = text->c_str() + close + 2;
  if (state) *state = *p;
  // fields after comm: 3=state ... 22=starttime -> skip 19 spaces from state
  int field = 3;
  while (*p && field < 22) {
    if (*p == ' ') ++field;
    ++p;
  }
  if (starttime) *starttime = std::strtoull(p, nullptr, 10);
  return true;
}

std::optional<uint64_t> start_time(pid_t pid) {
  uint64_t st = 0;
  if (!read_stat(pid, nullptr, &st)) return std::nullopt;
  return st;
}

char state_letter(pid_t pid) {
  char s = 0;
  if (!read_stat(pid, &s, nullptr)) return 0;
  return s;
}

bool alive(pid_t pid, uint64_t start) {
  if (pid <= 0) return false;
  char s = 0;
  uint64_t st = 0;
  if (!read_stat(pid, &s, &st)) return false;
  return st == start && s != 'Z' && s != 'X';
}

bool wait_exit(int pidfd, int timeout_ms) {
  struct pollfd p = {pidfd, POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

int signal_from_name(const std::string& in) {
  if (in.empty()) return -1;
  if (std::isdigit(static_cast<unsigned char>(in[0]))) {
    char* end = nullptr;
    long v = std::strtol(in.c_str(), &end, 10);
    return (*end == 0 && v > 0 && v < NSIG) ? int(v) : -1;
  }
  std::string s = in;
  for (auto& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  static const struct { const char* n; int v; } table[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT},   {"ILL", SIGILL},    {"TRAP", SIGTRAP},
      {"ABRT", SIGABRT}, {"IOT", SIGIOT},     {"BUS", SIGBUS},     {"FPE", SIGFPE},    {"KILL", SIGKILL},
      {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},  {"ALRM", SIGALRM},
      {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},  {"STOP", SIGSTOP},
      {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},   {"TTOU", SIGTTOU},   {"URG", SIGURG},    {"XCPU", SIGXCPU},
      {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
      {"POLL", SIGPOLL}, {"PWR", SIGPWR},     {"SYS", SIGSYS}};
  for (auto& e : table)
    if (s == e.n) return e.v;
  if (s.rfind("RTMIN", 0) == 0) {
    int off = s.size() > 6 && s[5] == '+' ? std::atoi(s.c_str() + 6) : 0;
    return SIGRTMIN + off <= SIGRTMAX ? SIGRTMIN + off : -1;
  }
  return -1;
}

namespace {
// Field `field` (0-based) of the /etc/passwd line of `uid`, or "". Read directly: envrun
// is linked statically, and glibc's getpwuid would load NSS modules of another version.
std::string passwd_field(uid_t uid, int field) {
  auto text = fs::read_file("/etc/passwd");
  if (!text) return "";
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(pos, end - pos);
    pos = end + 1;
    std::vector<std::string> f;
    size_t a = 0;
    for (size_t b; (b = line.find(':', a)) != std::string::npos; a = b + 1) f.push_back(line.substr(a, b - a));
    f.push_back(line.substr(a));
    if (f.size() >= 7 && f[2] == std::to_string(uid)) return f[size_t(field)];
  }
  return "";
}
}  // namespace

std::string home_dir() {
  if (const char* h = std::getenv("HOME"); h && *h) return h;
  std::string dir = passwd_field(::geteuid(), 5);
  return dir.empty() ? "/" : dir;
}

std::string user_name(uid_t uid) {
  std::string name = passwd_field(uid, 0);
  return name.empty() ? std::to_string(uid) : name;
}

}  // namespace envrun::proc
