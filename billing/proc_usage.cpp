// Per-process sampling from /proc with fds kept across samples (proc_usage.hpp).
#include "billing/proc_usage.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace envrun::billing {

namespace {

// Entries of an open /proc/PID/fd directory, "." and ".." left out; nullopt when the
// process is gone.
std::optional<uint64_t> count_entries(int dirfd) {
  if (::lseek(dirfd, 0, SEEK_SET) != 0) return std::nullopt;
  alignas(8) char buf[8192];
  uint64_t n = 0;
  for (;;) {
    ssize_t got = ::getdents64(dirfd, buf, sizeof buf);
    if (got < 0) return std::nullopt;
    if (got == 0) return n;
    for (ssize_t off = 0; off < got;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      bool dot = d->d_name[0] == '.' && (d->d_name[1] == 0 || (d->d_name[1] == '.' && d->d_name[2] == 0));
      if (!dot) ++n;
      off += d->d_reclen;
    }
  }
}

}  // namespace

bool ProcessUsage::read_entry(pid_t pid, Entry& e, Want want, ProcessTotals& t) {
  struct stat st;
  if (::fstat(e.fd_dir.fd(), &st) != 0) return false;
  uint64_t fds = uint64_t(st.st_size);
  if (fds == 0) {  // Linux < 6.2, or really no fd
    auto n = count_entries(e.fd_dir.fd());
    if (!n) return false;
    fds = *n;
  }
  auto file = [&](const char* name) { return proc_root + "/" + std::to_string(pid) + "/" + name; };
  uint64_t threads = 0;
  if (want.threads) {
    if (!e.status.valid()) {
      auto f = KernelFile::open(file("status"));
      if (!f) return false;
      e.status = std::move(*f);
    }
    auto text = e.status.read(buf_);
    if (!text) return false;
    threads = keyed_u64(*text, "Threads:").value_or(0);
  }
  if (want.io) {
    if (!e.io.valid()) {
      auto f = KernelFile::open(file("io"));
      if (!f) return false;
      e.io = std::move(*f);
    }
    auto text = e.io.read(buf_);
    if (!text) return false;
    // Counters of one process only grow; keep the last value if a read looks torn.
    e.rchar = std::max(e.rchar, keyed_u64(*text, "rchar:").value_or(0));
    e.wchar = std::max(e.wchar, keyed_u64(*text, "wchar:").value_or(0));
  }
  t.processes += 1;
  t.open_fds += fds;
  if (t.threads) *t.threads += threads;
  return true;
}

void ProcessUsage::retire(Entry& e) {
  gone_rchar_ += e.rchar;
  gone_wchar_ += e.wchar;
}

ProcessTotals ProcessUsage::sample(const std::vector<pid_t>& pids, Want want) {
  ++generation_;
  ProcessTotals t;
  if (want.threads) t.threads = 0;
  for (pid_t pid : pids) {
    auto it = live_.find(pid);
    if (it != live_.end()) {
      if (it->second.generation == generation_) continue;  // listed twice
      if (read_entry(pid, it->second, want, t)) {
        it->second.generation = generation_;
        continue;
      }
      retire(it->second);  // gone, or the pid now names another process: open it again
      live_.erase(it);
    }
    Entry e;
    auto dir = KernelFile::open(proc_root + "/" + std::to_string(pid) + "/fd", O_DIRECTORY);
    if (!dir) continue;
    e.fd_dir = std::move(*dir);
    if (!read_entry(pid, e, want, t)) continue;
    e.generation = generation_;
    live_.emplace(pid, std::move(e));
  }
  for (auto it = live_.begin(); it != live_.end();) {
    if (it->second.generation == generation_) {
      ++it;
      continue;
    }
    retire(it->second);
    it = live_.erase(it);
  }
  if (want.io) {
    uint64_t r = gone_rchar_, w = gone_wchar_;
    for (const auto& [pid, e] : live_) {
      r += e.rchar;
      w += e.wchar;
    }
    t.read_bytes = r;
    t.written_bytes = w;
  }
  return t;
}

}  // namespace envrun::billing
