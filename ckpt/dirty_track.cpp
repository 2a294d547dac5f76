// DirtyTracker and scan_dirty (dirty_track.hpp).
#include "ckpt/dirty_track.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "ckpt/uffd_uapi.hpp"
#include "kernel/fs.hpp"
#include "kernel/process.hpp"

namespace envrun::ckpt {

namespace {

// What an envrun tracker enables. THREAD_ID changes nothing for async write-protect
// (no fault messages are ever read); it only makes the set unlike an application's.
constexpr uint64_t kTrackerFeatures = uapi::kFeatureWpAsync | uapi::kFeatureWpUnpopulated | (1u << 8);
constexpr int kPtraceOSuspendSeccomp = 1 << 21;
constexpr size_t kScanVec = 4096;

std::string at(pid_t pid) { return "memory tracking: pid " + std::to_string(pid); }

// The fd numbers trackers live at: [base, base + span) below RLIMIT_NOFILE, high enough
// to stay out of the application's way, low enough not to grow its fd table much.
std::pair<int, int> fd_window(pid_t pid) {
  struct rlimit lim {};
  long soft = 1024;
  if (::prlimit(pid, RLIMIT_NOFILE, nullptr, &lim) == 0) soft = long(std::min<rlim_t>(lim.rlim_cur, 1 << 20));
  int base = int(std::min(soft / 2, 1000L));
  int span = int(std::min(soft - base, 1000L));
  return {base, std::max(span, 1)};
}

// A seccomp filter of the target could refuse (or kill on) the injected userfaultfd():
// suspended for the call when the target has one (CRIU does the same).
struct SeccompSuspend {
  pid_t tid = 0;
  bool active = false;
  Result<void> begin(pid_t pid, pid_t t) {
    auto status = fs::read_file("/proc/" + std::to_string(pid) + "/status");
    if (!status || status->find("Seccomp:\t0") != std::string::npos) return ok();
    if (::ptrace(PTRACE_SETOPTIONS, t, nullptr, reinterpret_cast<void*>(long(PTRACE_O_TRACESYSGOOD | kPtraceOSuspendSeccomp))) != 0)
      return Error::sys(at(pid) + ": it runs under a seccomp filter that cannot be suspended (PTRACE_O_SUSPEND_SECCOMP)");
    tid = t, active = true;
    return ok();
  }
  ~SeccompSuspend() {
    if (active) ::ptrace(PTRACE_SETOPTIONS, tid, nullptr, reinterpret_cast<void*>(long(PTRACE_O_TRACESYSGOOD)));
  }
};

Result<long> checked(infect::Remote& r, pid_t pid, const char* what, long nr, uint64_t a1 = 0, uint64_t a2 = 0,
                     uint64_t a3 = 0) {
  long rc = ENVRUN_TRY(r.syscall(nr, a1, a2, a3));
  if (rc < 0) return Error::sys(at(pid) + ": " + what + " (injected)", int(-rc));
  return rc;
}

// The engine's copy of the target's fd `fd` and its inode.
Result<std::pair<UniqueFd, uint64_t>> grab(pid_t pid, int fd) {
  auto pidfd = ENVRUN_TRY(::envrun::proc::pidfd_open(pid));
  UniqueFd copy(int(::syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
  if (!copy) return Error::sys(at(pid) + ": pidfd_getfd of fd " + std::to_string(fd));
  struct stat st {};
  if (::fstat(copy.get(), &st) != 0) return Error::sys(at(pid) + ": fstat of the tracker");
  return std::make_pair(std::move(copy), uint64_t(st.st_ino));
}

}  // namespace

Result<DirtyTracker> DirtyTracker::create(infect::Remote& r, pid_t pid) {
  SeccompSuspend sc;
  ENVRUN_CHECK(sc.begin(pid, r.tid()));
  long fd = ENVRUN_TRY(r.syscall(SYS_userfaultfd, uint64_t(O_CLOEXEC | O_NONBLOCK | uapi::kUffdUserModeOnly)));
  if (fd == -EINVAL) fd = ENVRUN_TRY(r.syscall(SYS_userfaultfd, uint64_t(O_CLOEXEC | O_NONBLOCK)));  // before 5.11
  if (fd < 0) return Error::sys(at(pid) + ": userfaultfd() (injected)", int(-fd));
  auto [base, span] = fd_window(pid);
  long high = ENVRUN_TRY(r.syscall(SYS_fcntl, uint64_t(fd), F_DUPFD_CLOEXEC, uint64_t(base)));
  if (high >= 0) (void)ENVRUN_TRY(r.syscall(SYS_close, uint64_t(fd)));
  else high = fd;  // a tiny RLIMIT_NOFILE: it stays where it is
  DirtyTracker t;
  t.pid_ = pid;
  t.target_fd_ = int(high);
  auto [copy, ino] = ENVRUN_TRY(grab(pid, t.target_fd_));
  t.fd_ = std::move(copy);
  t.ino_ = ino;
  uapi::UffdioApi api{uapi::kUffdApi, kTrackerFeatures, 0};
  if (::ioctl(t.fd_.get(), uapi::kUffdioApi, &api) != 0) {
    int e = errno;
    (void)t.close_in_target(r);
    return Error::sys(at(pid) + ": UFFDIO_API with WP_ASYNC|WP_UNPOPULATED (Linux >= 6.7 needed)", e);
  }
  return t;
}

Result<DirtyTracker> DirtyTracker::adopt(pid_t pid, int fd, uint64_t ino) {
  std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  char buf[64] = {};
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n < 0 || std::string(buf, size_t(n)) != "anon_inode:[userfaultfd]")
    return Error::make(ErrorKind::NotFound, at(pid) + ": fd " + std::to_string(fd) + " is no longer its tracker");
  auto [copy, got] = ENVRUN_TRY(grab(pid, fd));
  if (got != ino)
    return Error::make(ErrorKind::NotFound, at(pid) + ": fd " + std::to_string(fd) + " is another userfaultfd (inode " +
                                                std::to_string(got) + ", not " + std::to_string(ino) + ")");
  DirtyTracker t;
  t.pid_ = pid, t.target_fd_ = fd, t.ino_ = ino, t.fd_ = std::move(copy);
  return t;
}

Result<void> DirtyTracker::protect(const PageRange& range) {
  uapi::UffdioRegister reg{{range.start, range.bytes()}, uapi::kRegisterModeWp, 0};
  char where[64];
  std::snprintf(where, sizeof where, " [0x%llx, 0x%llx)", (unsigned long long)range.start, (unsigned long long)range.end);
  if (::ioctl(fd_.get(), uapi::kUffdioRegister, &reg) != 0) return Error::sys(at(pid_) + ": UFFDIO_REGISTER" + where);
  uapi::UffdioWriteProtect wp{{range.start, range.bytes()}, uapi::kWriteProtectModeWp};
  if (::ioctl(fd_.get(), uapi::kUffdioWriteProtect, &wp) != 0) return Error::sys(at(pid_) + ": UFFDIO_WRITEPROTECT" + where);
  return ok();
}

Result<void> DirtyTracker::renumber(infect::Remote& r) {
  SeccompSuspend sc;
  ENVRUN_CHECK(sc.begin(pid_, r.tid()));
  auto [base, span] = fd_window(pid_);
  int from = target_fd_ + 1 >= base && target_fd_ + 1 < base + span ? target_fd_ + 1 : base;
  long nfd = ENVRUN_TRY(r.syscall(SYS_fcntl, uint64_t(target_fd_), F_DUPFD_CLOEXEC, uint64_t(from)));
  if (nfd >= base + span || nfd == -EINVAL || nfd == -EMFILE) {  // past the window: wrap around
    if (nfd >= 0) (void)ENVRUN_TRY(r.syscall(SYS_close, uint64_t(nfd)));
    nfd = ENVRUN_TRY(r.syscall(SYS_fcntl, uint64_t(target_fd_), F_DUPFD_CLOEXEC, uint64_t(base)));
  }
  if (nfd < 0) return Error::sys(at(pid_) + ": fcntl(F_DUPFD_CLOEXEC) of the tracker (injected)", int(-nfd));
  if (nfd == target_fd_) return ok();
  (void)ENVRUN_TRY(checked(r, pid_, "close of the old tracker fd", SYS_close, uint64_t(target_fd_)));
  target_fd_ = int(nfd);
  return ok();
}

Result<void> DirtyTracker::close_in_target(infect::Remote& r) {
  if (target_fd_ < 0) return ok();
  SeccompSuspend sc;
  ENVRUN_CHECK(sc.begin(pid_, r.tid()));
  (void)ENVRUN_TRY(checked(r, pid_, "close of the tracker", SYS_close, uint64_t(target_fd_)));
  target_fd_ = -1;
  fd_.reset();
  return ok();
}

Result<void> close_tracker_copy(infect::Remote& r, pid_t pid, int fd) {
  SeccompSuspend sc;
  ENVRUN_CHECK(sc.begin(pid, r.tid()));
  (void)ENVRUN_TRY(checked(r, pid, "close of an inherited tracker fd", SYS_close, uint64_t(fd)));
  return ok();
}

namespace {

// Every region of [range) matching `a`'s categories, following walk_end when the
// vector fills up. nullopt on EPERM (PM_SCAN_CHECK_WPASYNC: a part is untracked).
Result<std::optional<PageRanges>> scan(int pagemap_fd, const PageRange& range, uapi::PmScanArg a) {
  std::vector<uapi::PageRegion> vec(kScanVec);
  PageRanges out;
  a.size = sizeof a;
  a.start = range.start;
  a.end = range.end;
  a.vec = reinterpret_cast<uint64_t>(vec.data());
  a.vec_len = vec.size();
  while (a.start < a.end) {
    int n = ::ioctl(pagemap_fd, uapi::kPagemapScan, &a);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPERM && (a.flags & uapi::kScanCheckWpAsync)) return std::optional<PageRanges>();
    if (n < 0) return Error::sys("memory tracking: PAGEMAP_SCAN");
    for (int i = 0; i < n; ++i) out.push_back({vec[size_t(i)].start, vec[size_t(i)].end});
    if (a.walk_end <= a.start) break;
    a.start = a.walk_end;
  }
  return std::optional<PageRanges>(normalized(std::move(out)));
}

}  // namespace

Result<std::optional<DirtyScan>> scan_dirty(int pagemap_fd, const PageRange& range) {
  // Absent first: neither a page nor a swap entry nor a uffd-wp marker (which counts as
  // "swapped"), i.e. dropped since the last round. The protecting scan below puts
  // markers on such pages (and its fast path, category WRITTEN alone, reports them as
  // written: not protected), so it must come second.
  uapi::PmScanArg g{};
  g.category_inverted = uapi::kPageIsPresent | uapi::kPageIsSwapped;
  g.category_mask = uapi::kPageIsPresent | uapi::kPageIsSwapped;
  g.return_mask = uapi::kPageIsPresent;
  auto absent = ENVRUN_TRY(scan(pagemap_fd, range, g));
  uapi::PmScanArg w{};
  w.flags = uapi::kScanWpMatching | uapi::kScanCheckWpAsync;
  w.category_mask = uapi::kPageIsWritten;
  w.return_mask = uapi::kPageIsWritten;
  auto written = ENVRUN_TRY(scan(pagemap_fd, range, w));
  if (!written || !absent) return std::optional<DirtyScan>();
  return std::optional<DirtyScan>(DirtyScan{std::move(*written), std::move(*absent)});
}

bool is_tracker_fd(const proc::FdInfo& fd) {
  if (fd.link != "anon_inode:[userfaultfd]") return false;
  // fdinfo: "API:\t<api>:<features>:<ioctls>" (features in hex).
  auto p = fd.text.find("API:\t");
  if (p == std::string::npos) return false;
  auto c = fd.text.find(':', p + 5);
  if (c == std::string::npos) return false;
  // Bit 31 is the kernel's own "initialized" mark (UFFD_FEATURE_INITIALIZED).
  return (std::strtoull(fd.text.c_str() + c + 1, nullptr, 16) & ~(1ull << 31)) == kTrackerFeatures;
}

}  // namespace envrun::ckpt
