// FileTable (dump_files.hpp).
#include "ckpt/dump_files.hpp"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "ckpt/dump_sockets.hpp"
#include "ckpt/sockets.hpp"
#include "ckpt/tcp_repair.hpp"
#include "kernel/fd.hpp"

namespace envrun::ckpt {

namespace {

std::string fd_path(pid_t pid, int fd) { return "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd); }

bool same_file(pid_t p1, int fd1, pid_t p2, int fd2) {
  return ::syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The bytes in a pipe's buffer, without taking them out: tee(2) into a pipe of ours.
Result<std::vector<uint8_t>> pipe_bytes(pid_t pid, int fd) {
  UniqueFd in(::open(fd_path(pid, fd).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!in) return Error::sys("pid " + std::to_string(pid) + " fd " + std::to_string(fd) + ": open the pipe");
  int size = ::fcntl(in.get(), F_GETPIPE_SZ);
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) return Error::sys("pipe2");
  UniqueFd r(p[0]), w(p[1]);
  if (size > 0) (void)::fcntl(w.get(), F_SETPIPE_SZ, size);
  std::vector<uint8_t> out;
  ssize_t n = ::tee(in.get(), w.get(), size_t(size > 0 ? size : 65536), SPLICE_F_NONBLOCK);
  if (n < 0 && errno != EAGAIN) return Error::sys("pid " + std::to_string(pid) + " fd " + std::to_string(fd) + ": tee");
  if (n > 0) {
    out.resize(size_t(n));
    if (::read(r.get(), out.data(), out.size()) != n) return Error::sys("read from the tee pipe");
  }
  return out;
}

Result<std::vector<uint8_t>> whole_file(pid_t pid, int fd, uint64_t size) {
  UniqueFd in(::open(fd_path(pid, fd).c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return Error::sys("pid " + std::to_string(pid) + " fd " + std::to_string(fd) + ": open the deleted file");
  std::vector<uint8_t> out(size);
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(in.get(), out.data() + got, size - got, off_t(got));
    if (n < 0) return Error::sys("pid " + std::to_string(pid) + " fd " + std::to_string(fd) + ": read the deleted file");
    if (n == 0) break;
    got += size_t(n);
  }
  out.resize(got);
  return out;
}

}  // namespace

uint64_t FileTable::add_data(std::vector<uint8_t> bytes) {
  uint64_t id = data_.size() + 1;
  data_[id] = std::move(bytes);
  return id;
}

Result<void> FileTable::classify(pid_t pid, pid_t ns_pid, const proc::FdInfo& fd, OpenFile& f) {
  f.flags = fd.flags & ~O_CLOEXEC;
  f.pos = fd.pos;
  unsigned long long ino = 0;
  if (fd.link.rfind("socket:[", 0) == 0) {
    SocketDump d;
    ENVRUN_CHECK(dump_socket(pid, fd, f, d, tcp_established_));
    if (!d.queued.empty()) f.sock.in_data_id = add_data(std::move(d.queued));
    if (!d.send_queue.empty()) f.sock.tcp.send_data_id = add_data(std::move(d.send_queue));
    if (d.repair) repair_.push_back(std::move(d.repair));
  } else if (fd.link == "anon_inode:[eventpoll]") {
    ENVRUN_CHECK(dump_epoll(pid, ns_pid, fd, f));
  } else if (fd.link == "anon_inode:[eventfd]") {
    ENVRUN_CHECK(dump_eventfd(fd, f));
  } else if (fd.link == "anon_inode:[timerfd]") {
    ENVRUN_CHECK(dump_timerfd(fd, f));
  } else if (fd.link == "anon_inode:[signalfd]") {
    ENVRUN_CHECK(dump_signalfd(fd, f));
  } else if (std::sscanf(fd.link.c_str(), "pipe:[%llu]", &ino) == 1) {
    f.kind = OpenFile::Kind::Pipe;
    f.pipe_ino = ino;
  } else if (fd.link.empty() || fd.link[0] != '/') {
    f.kind = OpenFile::Kind::Unsupported;
    f.what = fd.link;
    return ok();
  } else {
    struct stat st {};
    if (::stat(fd_path(pid, fd.fd).c_str(), &st) < 0) return Error::sys("pid " + std::to_string(pid) + " fd " + std::to_string(fd.fd));
    f.path = fd.link;
    f.mode = st.st_mode;
    f.host_path = std::find(host_mounts_.begin(), host_mounts_.end(), fd.mnt_id) != host_mounts_.end();
    if (S_ISDIR(st.st_mode)) f.kind = OpenFile::Kind::Directory;
    else if (S_ISCHR(st.st_mode)) f.kind = OpenFile::Kind::CharDevice;
    else if (S_ISFIFO(st.st_mode)) f.kind = OpenFile::Kind::Fifo, f.pipe_ino = st.st_ino;
    else if (S_ISREG(st.st_mode) && st.st_nlink == 0 && ends_with(f.path, " (deleted)")) {
      f.kind = OpenFile::Kind::Deleted;
      f.path.resize(f.path.size() - 10);
      auto bytes = ENVRUN_TRY(whole_file(pid, fd.fd, uint64_t(st.st_size)));
      f.data_size = bytes.size();
      f.data_id = add_data(std::move(bytes));
    } else if (S_ISREG(st.st_mode)) {
      f.kind = OpenFile::Kind::Regular;
      // A file on a tmpfs of the tree's own (its /dev/shm, a tmpfs /tmp): the mount is
      // new and empty after a restore, so the file's bytes go into the image.
      struct statfs sf {};
      if (!f.host_path && ::statfs(fd_path(pid, fd.fd).c_str(), &sf) == 0 && sf.f_type == TMPFS_MAGIC) {
        auto bytes = ENVRUN_TRY(whole_file(pid, fd.fd, uint64_t(st.st_size)));
        f.data_size = bytes.size();
        f.data_id = add_data(std::move(bytes));
      }
    }
    else {
      f.kind = OpenFile::Kind::Unsupported;
      f.what = fd.link;
      return ok();
    }
  }
  if ((f.kind == OpenFile::Kind::Pipe || f.kind == OpenFile::Kind::Fifo) && !pipe_data_.count(f.pipe_ino)) {
    auto bytes = ENVRUN_TRY(pipe_bytes(pid, fd.fd));
    f.data_size = bytes.size();
    f.data_id = add_data(std::move(bytes));
    pipe_data_[f.pipe_ino] = f.data_id;
  }
  return ok();
}

Result<FdEntry> FileTable::add(pid_t pid, pid_t ns_pid, const proc::FdInfo& fd) {
  FdEntry e{fd.fd, 0, (fd.flags & O_CLOEXEC) != 0};
  for (size_t i = 0; i < files_.size(); ++i) {
    if (same_file(owners_[i].first, owners_[i].second, pid, fd.fd)) {
      e.file = files_[i].id;
      return e;
    }
  }
  OpenFile f;
  f.id = files_.size() + 1;
  ENVRUN_CHECK(classify(pid, ns_pid, fd, f));
  if (f.kind == OpenFile::Kind::Unsupported)
    return Error::make(ErrorKind::System, "pid " + std::to_string(pid) + " fd " + std::to_string(fd.fd) + ": " + f.what +
                                              ": this kind of file cannot be checkpointed yet");
  e.file = f.id;
  files_.push_back(std::move(f));
  owners_.push_back({pid, fd.fd});
  return e;
}

void FileTable::end_repair() {
  for (auto& s : repair_) tcp::end_repair(s.get());
  repair_.clear();
}

Result<void> FileTable::check_peers() const {
  for (const auto& f : files_) {
    if (f.kind != OpenFile::Kind::Socket || f.sock.peer_ino == 0) continue;
    bool found = std::any_of(files_.begin(), files_.end(), [&](const OpenFile& o) {
      return o.kind == OpenFile::Kind::Socket && o.sock.ino == f.sock.peer_ino;
    });
    if (!found) {
      const auto& k = f.sock;
      return Error::make(ErrorKind::System, sock::describe(k.family, k.type, k.addr, k.port) + " (inode " + std::to_string(k.ino) +
                                                ") is connected to socket inode " + std::to_string(k.peer_ino) +
                                                ", which no process of the tree holds: cannot be checkpointed yet");
    }
  }
  return ok();
}

}  // namespace envrun::ckpt
