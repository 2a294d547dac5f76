// send_image / receive_image.
#include "ha/image_transfer.hpp"

#include "ha/postcopy.hpp"

#include <unistd.h>

#include <cerrno>
#include <optional>
#include <vector>


namespace envrun::ha {

namespace {

Result<void> write_all_fd(int fd, const uint8_t* p, size_t n, const std::string& name) {
  while (n > 0) {
    ssize_t k = ::write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return Error::sys(name);
    p += k, n -= size_t(k);
  }
  return ok();
}

// Up to buf.size() bytes; 0 at EOF.
Result<size_t> read_some(int fd, std::vector<uint8_t>& buf) {
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("the checkpoint stream");
    if (n == 0) break;
    got += size_t(n);
  }
  return got;
}

}  // namespace

Result<uint64_t> send_image(Channel& ch, int in_fd, int keep_fd, const std::string& keep_name, uint32_t round,
                            const std::string& kind) {
  std::optional<Error> send_failed;
  auto note = [&](Result<void> r) {
    if (!r && !send_failed) send_failed = std::move(r).error();
  };
  note(ch.send_json(FrameType::ImageBegin, {{"round", round}, {"kind", kind}}));
  std::vector<uint8_t> buf(ch.max_send());
  uint64_t total = 0;
  for (;;) {
    size_t n = ENVRUN_TRY(read_some(in_fd, buf));
    if (n == 0) break;
    if (keep_fd >= 0) ENVRUN_CHECK(write_all_fd(keep_fd, buf.data(), n, keep_name));
    total += n;
    if (send_failed) continue;
    note(ch.send_in_place(FrameType::Data, std::span<uint8_t>(buf.data(), n)));  // buf is read anew
    if (!send_failed && ch.input_pending()) {  // the agent gave up (disk full, a limit): it says why
      auto m = ch.recv_next();
      note(m ? Result<void>(Error::make(ErrorKind::Generic, ch.peer() + ": unexpected message during the image"))
             : Result<void>(std::move(m).error()));
    }
  }
  if (send_failed) return std::move(*send_failed);
  ENVRUN_CHECK(ch.send_json(FrameType::ImageEnd, {{"bytes", total}}));
  return total;
}

Result<uint64_t> receive_image(Channel& ch, int out_fd, const std::string& out_name, uint64_t max_bytes) {
  uint64_t total = 0;
  Frame f;  // its buffer serves every frame
  for (;;) {
    ENVRUN_CHECK(ch.recv_into(f));
    if (f.type == FrameType::LazyHoles && total == 0) {  // post-copy: a sparse image (postcopy.hpp)
      auto j = nlohmann::json::parse(f.payload.begin(), f.payload.end(), nullptr, false);
      if (!j.is_object()) return Error::make(ErrorKind::Generic, ch.peer() + ": lazy-holes message: not valid JSON");
      return receive_sparse_image(ch, j, out_fd, out_name, max_bytes);
    }
    if (f.type == FrameType::ImageEnd) {
      auto j = nlohmann::json::parse(f.payload.begin(), f.payload.end(), nullptr, false);
      if (!j.is_object()) return Error::make(ErrorKind::Generic, ch.peer() + ": image-end message: not valid JSON");
      uint64_t bytes = j.value("bytes", uint64_t(0));
      if (bytes != total)
        return Error::make(ErrorKind::Generic, ch.peer() + ": the image does not match its announced size (" +
                                                   std::to_string(total) + " bytes arrived, " + std::to_string(bytes) +
                                                   " announced)");
      return total;
    }
    if (f.type == FrameType::Error) {
      auto j = nlohmann::json::parse(f.payload.begin(), f.payload.end(), nullptr, false);
      return Error::make(ErrorKind::Generic, ch.peer() + ": " + (j.is_object() ? j.value("message", "error") : "error"));
    }
    if (f.type != FrameType::Data)
      return Error::make(ErrorKind::Generic, ch.peer() + ": unexpected " + frame_type_name(f.type) + " frame in the image");
    if (total + f.payload.size() > max_bytes)
      return Error::make(ErrorKind::Generic, "the image exceeds the agent's limit of " + std::to_string(max_bytes) +
                                                 " bytes (--max-image-bytes)");
    ENVRUN_CHECK(write_all_fd(out_fd, f.payload.data(), f.payload.size(), out_name));
    total += f.payload.size();
  }
}

}  // namespace envrun::ha
