// read_plan and open_files (restore_plan.hpp).
#include "ckpt/restore_plan.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "kernel/fs.hpp"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)  // linux/timerfd.h (CONFIG_CHECKPOINT_RESTORE)
#endif

namespace envrun::ckpt {

namespace {

Error bad(const std::string& what) { return Error::make(ErrorKind::Config, "image: " + what); }

template <class F>
Result<void> parse_json(const std::vector<uint8_t>& bytes, const char* what, F&& f) {
  try {
    f(nlohmann::json::parse(bytes.begin(), bytes.end()));
  } catch (const std::exception& e) {
    return bad(std::string(what) + ": " + e.what());
  }
  return ok();
}

Result<void> write_all(int fd, const std::vector<uint8_t>& bytes, const std::string& what) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys(what);
    done += size_t(n);
  }
  return ok();
}

Result<void> link_tree(Plan& p) {
  if (p.procs.empty()) return bad("no process in the image");
  for (size_t i = 1; i < p.procs.size(); ++i) {
    size_t parent = p.index_of(p.procs[i].core.ppid);
    if (parent == std::string::npos) return bad("pid " + std::to_string(p.procs[i].core.pid) + ": its parent " +
                                                std::to_string(p.procs[i].core.ppid) + " is not in the image");
    p.procs[parent].children.push_back(i);
  }
  return ok();
}

}  // namespace

std::string Plan::inside(const std::string& host_path) const {
  if (old_root.empty() || old_root == "/") return host_path;
  if (host_path == old_root) return "/";
  if (host_path.rfind(old_root + "/", 0) == 0) return host_path.substr(old_root.size());
  return host_path;
}

std::string Plan::outside(const std::string& host_path) const {
  std::string in = inside(host_path);
  if (new_root.empty() || new_root == "/") return in;
  return new_root + in;
}

size_t Plan::index_of(pid_t pid) const {
  for (size_t i = 0; i < procs.size(); ++i)
    if (procs[i].core.pid == pid) return i;
  return std::string::npos;
}

const std::vector<uint8_t>* Plan::data(uint64_t id) const {
  auto it = file_data.find(id);
  return id && it != file_data.end() ? &it->second : nullptr;
}

int Plan::fd_floor() const {
  int top = 2;
  for (const auto& pp : procs)
    for (const auto& e : pp.core.fds) top = std::max(top, e.fd);
  return top + 1;
}

Result<Plan> read_plan(ImageReader& in, std::optional<SectionHeader>& first_memory) {
  Plan p;
  first_memory.reset();
  for (;;) {
    auto h = ENVRUN_TRY(in.next());
    if (!h) break;
    auto type = h->section_type();
    if (type == SectionType::Pages || type == SectionType::SharedMem || type == SectionType::ParentPages) {
      first_memory = *h;
      break;
    }
    auto bytes = ENVRUN_TRY(in.read_payload());
    switch (type) {
      case SectionType::Inventory:
        ENVRUN_CHECK(parse_json(bytes, "inventory", [&](const nlohmann::json& j) { p.inventory = j; }));
        break;
      case SectionType::Files:
        ENVRUN_CHECK(parse_json(bytes, "files", [&](const nlohmann::json& j) {
          for (const auto& f : j) p.files.push_back(file_from_json(f));
        }));
        break;
      case SectionType::FileData: p.file_data[h->id] = std::move(bytes); break;
      case SectionType::ProcessCore:
        ENVRUN_CHECK(parse_json(bytes, "process-core", [&](const nlohmann::json& j) {
          ProcPlan pp;
          pp.core = process_from_json(j);
          pp.regs.resize(pp.core.threads.size());
          p.procs.push_back(std::move(pp));
        }));
        break;
      case SectionType::ThreadRegs:
      case SectionType::ThreadXstate: {
        if (p.procs.empty()) return bad("thread state before any process");
        auto& pp = p.procs.back();
        size_t t = 0;
        while (t < pp.core.threads.size() && uint64_t(pp.core.threads[t].tid) != h->id) ++t;
        if (t == pp.core.threads.size()) return bad("registers of tid " + std::to_string(h->id) + ", not a thread of pid " + std::to_string(pp.core.pid));
        if (type == SectionType::ThreadXstate) {
          pp.regs[t].xstate = std::move(bytes);
        } else {
          if (bytes.size() != sizeof(user_regs_struct)) return bad("thread-regs of tid " + std::to_string(h->id) + ": wrong size");
          std::memcpy(&pp.regs[t].gp, bytes.data(), bytes.size());
        }
        break;
      }
      default: break;  // sections of later versions that this one may ignore
    }
  }
  ENVRUN_CHECK(link_tree(p));
  if (p.old_root.empty()) p.old_root = p.procs[0].core.root;
  return p;
}

bool opened_inside(const OpenFile& f) {
  switch (f.kind) {
    case OpenFile::Kind::Regular:
    case OpenFile::Kind::Directory:
    case OpenFile::Kind::CharDevice:
    case OpenFile::Kind::Fifo:
    case OpenFile::Kind::Deleted: return !f.host_path;
    default: return false;
  }
}

Result<int> open_path_file(const Plan& p, const OpenFile& f, const std::string& path) {
  std::string where = "file " + std::to_string(f.id) + " (" + f.path + ")";
  UniqueFd fd;
  if (f.kind == OpenFile::Kind::Deleted) {
    std::string dir = path.substr(0, path.find_last_of('/'));
    UniqueFd tmp(::open(dir.empty() ? "/" : dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, f.mode & 07777));
    if (!tmp) return Error::sys("restore: " + where + ": O_TMPFILE in " + dir);
    if (const auto* data = p.data(f.data_id)) ENVRUN_CHECK(write_all(tmp.get(), *data, "restore: " + where));
    std::string self = "/proc/self/fd/" + std::to_string(tmp.get());
    fd.reset(::open(self.c_str(), (f.flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_CLOEXEC));
    if (!fd) return Error::sys("restore: " + where + ": reopen");
  } else {
    const auto* data = p.data(f.data_id);
    if (f.kind == OpenFile::Kind::Regular && data && ::access(path.c_str(), F_OK) != 0) {
      // Saved whole (it was on a tmpfs of the tree's own): made again where it was.
      ENVRUN_CHECK(fs::mkdir_p(path.substr(0, path.find_last_of('/')), 0755));
      UniqueFd w(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, f.mode & 07777));
      if (!w) return Error::sys("restore: " + where + ": create " + path);
      ENVRUN_CHECK(write_all(w.get(), *data, "restore: " + where));
    }
    int flags = (f.flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_CLOEXEC;
    if (f.kind == OpenFile::Kind::Fifo) flags |= O_NONBLOCK;  // no waiting for the other end
    fd.reset(::open(path.c_str(), flags));
    if (!fd) return Error::sys("restore: " + where + ": open " + path);
    if (f.kind == OpenFile::Kind::Fifo) (void)::fcntl(fd.get(), F_SETFL, f.flags & ~O_ACCMODE);
  }
  if (f.kind == OpenFile::Kind::Regular || f.kind == OpenFile::Kind::Deleted || f.kind == OpenFile::Kind::Directory)
    if (::lseek(fd.get(), f.pos, SEEK_SET) < 0 && f.pos != 0) return Error::sys("restore: " + where + ": lseek");
  return fd.release();
}

Result<void> open_files_inside(const Plan& p, std::map<uint64_t, UniqueFd>& out) {
  for (const auto& f : p.files)
    if (opened_inside(f)) out[f.id].reset(ENVRUN_TRY(open_path_file(p, f, p.inside(f.path))));
  return ok();
}

Result<void> open_files(Plan& p) {
  std::map<uint64_t, std::pair<int, int>> pipes;  // inode -> (read end, write end)
  for (const auto& f : p.files) {
    int fd = -1;
    int access = f.flags & O_ACCMODE;
    std::string where = "file " + std::to_string(f.id) + " (" + (f.path.empty() ? "pipe" : f.path) + ")";
    switch (f.kind) {
      case OpenFile::Kind::Pipe: {
        auto it = pipes.find(f.pipe_ino);
        if (it == pipes.end()) {
          int pp[2];
          if (::pipe2(pp, O_CLOEXEC) < 0) return Error::sys("restore: pipe2");
          const auto* data = p.data(f.data_id);
          if (data && !data->empty()) {
            if (data->size() > 65536) (void)::fcntl(pp[1], F_SETPIPE_SZ, int(data->size()));
            ENVRUN_CHECK(write_all(pp[1], *data, "restore: " + where + ": refill"));
          }
          it = pipes.emplace(f.pipe_ino, std::make_pair(pp[0], pp[1])).first;
          p.pipe_ends.emplace_back(pp[0]);  // both ends owned even if one is unused
          p.pipe_ends.emplace_back(pp[1]);
        }
        fd = ::fcntl(access == O_RDONLY ? it->second.first : it->second.second, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) return Error::sys("restore: " + where);
        (void)::fcntl(fd, F_SETFL, f.flags & ~O_ACCMODE);
        break;
      }
      case OpenFile::Kind::Socket: continue;  // made by the root stub, in the tree's network namespace
      case OpenFile::Kind::Epoll:
        fd = ::epoll_create1(EPOLL_CLOEXEC);  // filled by its owner (restore_sockets.hpp)
        if (fd < 0) return Error::sys("restore: " + where + ": epoll_create1");
        break;
      case OpenFile::Kind::EventFd:
        fd = ::eventfd(unsigned(f.count), EFD_CLOEXEC | (f.semaphore ? EFD_SEMAPHORE : 0));
        if (fd < 0) return Error::sys("restore: " + where + ": eventfd");
        break;
      case OpenFile::Kind::TimerFd: {
        const auto& t = f.timer;
        fd = ::timerfd_create(t.clockid, TFD_CLOEXEC);
        if (fd < 0) return Error::sys("restore: " + where + ": timerfd_create clock " + std::to_string(t.clockid));
        // The remaining time, relative (as dumped); absolute timers come back relative.
        itimerspec its{{t.interval_sec, t.interval_nsec}, {t.value_sec, t.value_nsec}};
        // A periodic timer with unread expirations shows 0 left (it moves on when read):
        // its next expiration is an interval away.
        if (!its.it_value.tv_sec && !its.it_value.tv_nsec) its.it_value = its.it_interval;
        if ((its.it_value.tv_sec || its.it_value.tv_nsec) && ::timerfd_settime(fd, 0, &its, nullptr) < 0)
          return Error::sys("restore: " + where + ": timerfd_settime");
        uint64_t ticks = t.ticks;
        if (ticks && ::ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0) return Error::sys("restore: " + where + ": TFD_IOC_SET_TICKS");
        break;
      }
      case OpenFile::Kind::SignalFd: {
        sigset_t set;
        sigemptyset(&set);
        for (int sig = 1; sig <= 64; ++sig)
          if (f.sigmask & (1ull << (sig - 1))) sigaddset(&set, sig);
        fd = ::signalfd(-1, &set, SFD_CLOEXEC);
        if (fd < 0) return Error::sys("restore: " + where + ": signalfd");
        break;
      }
      default: {
        if (opened_inside(f)) continue;  // by the root stub (open_files_inside)
        fd = ENVRUN_TRY(open_path_file(p, f, f.host_path ? f.path : p.outside(f.path)));
        break;
      }
    }
    if (f.kind == OpenFile::Kind::Epoll || f.kind == OpenFile::Kind::EventFd || f.kind == OpenFile::Kind::TimerFd ||
        f.kind == OpenFile::Kind::SignalFd)
      (void)::fcntl(fd, F_SETFL, f.flags & ~O_ACCMODE);
    p.file_fds[f.id].reset(fd);
  }
  // Shared anonymous memory: one memfd per object, sized to its largest mapping.
  std::map<uint64_t, uint64_t> sizes;
  for (const auto& pp : p.procs)
    for (const auto& v : pp.core.vmas)
      if (v.kind == Vma::Kind::SharedAnon) sizes[v.ino] = std::max(sizes[v.ino], v.offset + v.size());
  for (const auto& [ino, size] : sizes) {
    UniqueFd mem(::memfd_create("envrun-shm", MFD_CLOEXEC));
    if (!mem || ::ftruncate(mem.get(), off_t(size)) < 0) return Error::sys("restore: memfd for shared memory");
    int fd = ::fcntl(mem.get(), F_DUPFD_CLOEXEC, p.fd_floor());  // above every restored fd number
    if (fd < 0) return Error::sys("restore: memfd for shared memory: move above fd " + std::to_string(p.fd_floor()));
    p.shm_fds[ino].reset(fd);
  }
  return ok();
}

}  // namespace envrun::ckpt
