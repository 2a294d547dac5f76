// The page server's process (lazy_server.hpp: start_lazy_server, read_lazy_report).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "ckpt/lazy_server.hpp"
#include "ckpt/lazy_watchdog.hpp"
#include "kernel/log.hpp"

namespace envrun::ckpt {

namespace {

void write_line(int fd, const std::string& line) {
  std::string l = line + "\n";
  (void)!::write(fd, l.data(), l.size());
}

// Every fd but `keep` closed; stdio on /dev/null.
void close_others(std::vector<int> keep) {
  int null = ::open("/dev/null", O_RDWR);
  for (int i = 0; i < 3; ++i)
    if (null >= 0) ::dup2(null, i);
  keep.push_back(0), keep.push_back(1), keep.push_back(2);
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return;
  std::vector<int> all;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') all.push_back(std::atoi(e->d_name));
  int self = ::dirfd(d);
  for (int fd : all)
    if (fd != self && std::find(keep.begin(), keep.end(), fd) == keep.end()) ::close(fd);
  ::closedir(d);
}

[[noreturn]] void serve(LazyServerSetup& s, int report) {
  std::vector<int> keep = s.source->fds();
  std::vector<int> uffds;
  for (const auto& t : s.targets) uffds.push_back(t.uffd.get());
  keep.insert(keep.end(), uffds.begin(), uffds.end());
  keep.push_back(report);
  if (log::file_fd() >= 0) keep.push_back(log::file_fd());
  close_others(keep);
  ::signal(SIGPIPE, SIG_IGN);
  ::prctl(PR_SET_NAME, "envrun-lazy");
  write_line(report, "pid " + std::to_string(::getpid()));
  auto wd = lazy_watchdog_start(uffds, s.root);
  if (!wd) log::warn(wd.error().message + ": the page server runs without a watchdog");
  auto r = run_lazy_server(s);
  lazy_watchdog_done();
  if (!r) {
    write_line(report, "failed: " + r.error().message);
    ::_exit(1);
  }
  char line[160];
  std::snprintf(line, sizeof line, "done %llu %llu %llu %llu", (unsigned long long)r->all_in_us,
                (unsigned long long)r->pages_copied, (unsigned long long)r->faults, (unsigned long long)r->zero_pages);
  log::debug(std::string("lazy pages: every page in: ") + line);
  write_line(report, line);
  ::_exit(0);
}

std::string read_line(int fd) {
  std::string out;
  char c;
  while (true) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    out += c;
  }
  return out;
}

}  // namespace

Result<LazyServerHandle> start_lazy_server(LazyServerSetup&& s) {
  int rp[2];
  if (::pipe2(rp, O_CLOEXEC) < 0) return Error::sys("lazy pages: pipe2");
  UniqueFd rd(rp[0]), wr(rp[1]);
  pid_t mid = ::fork();
  if (mid < 0) return Error::sys("lazy pages: fork the page server");
  if (mid == 0) {
    ::setsid();
    pid_t srv = ::fork();
    if (srv != 0) ::_exit(srv < 0 ? 1 : 0);
    serve(s, wr.get());
  }
  wr.reset();
  int status = 0;
  ::waitpid(mid, &status, 0);
  LazyServerHandle h;
  std::string first = read_line(rd.get());
  if (first.rfind("pid ", 0) != 0) return Error::make(ErrorKind::System, "lazy pages: the page server did not start");
  h.pid = pid_t(std::atoi(first.c_str() + 4));
  h.report = std::move(rd);
  for (auto& t : s.targets) t.uffd.reset();  // the server holds them now
  return h;
}

LazyReport read_lazy_report(int fd) {
  LazyReport r;
  std::string line = read_line(fd);
  unsigned long long us, pages, faults, zero;
  if (std::sscanf(line.c_str(), "done %llu %llu %llu %llu", &us, &pages, &faults, &zero) == 4) {
    r.ok = true;
    r.stats.all_in_us = us, r.stats.pages_copied = pages, r.stats.faults = faults, r.stats.zero_pages = zero;
    return r;
  }
  r.message = line.rfind("failed: ", 0) == 0 ? line.substr(8) : "the page server ended without a report";
  return r;
}

}  // namespace envrun::ckpt
