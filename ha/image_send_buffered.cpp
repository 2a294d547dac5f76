// send_image_buffered (image_transfer.hpp): the checkpoint's stream is written to the
// local copy as fast as it comes, and a sender thread sends from that file behind it.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "ha/image_transfer.hpp"

namespace envrun::ha {

namespace {

struct Progress {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t written = 0;
  bool eof = false, abandoned = false;
};

Result<void> pread_all(int fd, uint8_t* p, size_t n, uint64_t off, const std::string& name) {
  while (n > 0) {
    ssize_t k = ::pread(fd, p, n, off_t(off));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return k < 0 ? Error::sys(name) : Error::make(ErrorKind::Generic, name + ": shorter than written");
    p += k, n -= size_t(k), off += uint64_t(k);
  }
  return ok();
}

// The sender: ImageBegin, Data frames of the file's bytes as they are written, ImageEnd.
Result<uint64_t> send_behind(Channel& ch, int file_fd, const std::string& name, uint32_t round, const std::string& kind,
                             Progress& pr) {
  ENVRUN_CHECK(ch.send_json(FrameType::ImageBegin, {{"round", round}, {"kind", kind}}));
  std::vector<uint8_t> buf(ch.max_send());
  uint64_t off = 0;
  for (;;) {
    uint64_t avail;
    {
      std::unique_lock lk(pr.mu);
      pr.cv.wait(lk, [&] { return pr.abandoned || pr.eof || pr.written - off >= buf.size(); });
      if (pr.abandoned) return Error::make(ErrorKind::Generic, name + ": the local copy failed");
      avail = pr.written - off;
    }
    if (avail == 0) break;  // eof
    size_t n = size_t(std::min<uint64_t>(avail, buf.size()));
    ENVRUN_CHECK(pread_all(file_fd, buf.data(), n, off, name));
    ENVRUN_CHECK(ch.send(FrameType::Data, Bytes(buf.data(), n)));
    off += n;
    if (ch.input_pending()) {  // the agent gave up (disk full, a limit): it says why
      auto m = ch.recv_next();
      if (!m) return std::move(m).error();
      return Error::make(ErrorKind::Generic, ch.peer() + ": unexpected message during the image");
    }
  }
  ENVRUN_CHECK(ch.send_json(FrameType::ImageEnd, {{"bytes", off}}));
  return off;
}

Result<void> write_all_fd(int fd, const uint8_t* p, size_t n, const std::string& name) {
  while (n > 0) {
    ssize_t k = ::write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return Error::sys(name);
    p += k, n -= size_t(k);
  }
  return ok();
}

}  // namespace

Result<uint64_t> send_image_buffered(Channel& ch, int in_fd, int keep_fd, const std::string& keep_name, uint32_t round,
                                     const std::string& kind) {
  UniqueFd file(::open(keep_name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) return Error::sys(keep_name);
  Progress pr;
  std::optional<Result<uint64_t>> sent;
  std::thread sender([&] { sent.emplace(send_behind(ch, file.get(), keep_name, round, kind, pr)); });
  auto stop = [&](bool abandoned) {
    {
      std::lock_guard lk(pr.mu);
      (abandoned ? pr.abandoned : pr.eof) = true;
    }
    pr.cv.notify_all();
    sender.join();
  };
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {  // the stream is read to its end whatever the sender does: the checkpoint must finish
    ssize_t n = ::read(in_fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return stop(true), Error::sys("the checkpoint stream");
    if (n == 0) break;
    if (auto w = write_all_fd(keep_fd, buf.data(), size_t(n), keep_name); !w) return stop(true), std::move(w).error();
    {
      std::lock_guard lk(pr.mu);
      pr.written += uint64_t(n);
    }
    pr.cv.notify_all();
  }
  stop(false);
  return std::move(*sent);
}

}  // namespace envrun::ha
