// RemoteFill, lazy_holes (lazy_remote.hpp).
#include "ckpt/lazy_remote.hpp"

#include <unistd.h>

#include <cerrno>

#include "ckpt/image.hpp"

namespace envrun::ckpt {

namespace {

Result<void> io_all(int fd, uint8_t* p, size_t n, bool writing) {
  while (n > 0) {
    ssize_t k = writing ? ::write(fd, p, n) : ::read(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return Error::sys(std::string("page fetch fd: ") + (writing ? "write" : "read"));
    if (k == 0) return Error::make(ErrorKind::System, "page fetch fd: the migration agent went away");
    p += k, n -= size_t(k);
  }
  return ok();
}

}  // namespace

Result<void> RemoteFill::send_request(uint64_t off, uint64_t len, bool fault) {
  uint8_t req[16];
  uint64_t l = len | (fault ? 1ull << 63 : 0);
  for (int i = 0; i < 8; ++i) req[i] = uint8_t(off >> (8 * i)), req[8 + i] = uint8_t(l >> (8 * i));
  ENVRUN_CHECK(io_all(fd_.get(), req, sizeof req, true));
  pending_.emplace_back(off, len);
  return ok();
}

Result<void> RemoteFill::take_answer() {
  auto [off, len] = pending_.front();
  uint8_t status = 1;
  ENVRUN_CHECK(io_all(fd_.get(), &status, 1, false));
  if (status != 0)
    return Error::make(ErrorKind::System, "page fetch: the migration agent could not fetch bytes " + std::to_string(off) +
                                              "+" + std::to_string(len) + " of the image from the source");
  pending_.pop_front();
  filled_.insert({off, len});
  fetched_ += len;
  return ok();
}

bool RemoteFill::pending(uint64_t off, uint64_t len) const {
  for (const auto& p : pending_)
    if (p.first == off && p.second == len) return true;
  return false;
}

Result<void> RemoteFill::ask(uint64_t off, uint64_t len) {
  if (len == 0 || filled_.count({off, len}) || pending(off, len)) return ok();
  return send_request(off, len, false);
}

Result<void> RemoteFill::ensure(uint64_t off, uint64_t len, bool fault) {
  if (len == 0 || filled_.count({off, len})) return ok();
  if (!pending(off, len)) ENVRUN_CHECK(send_request(off, len, fault));
  while (!filled_.count({off, len})) ENVRUN_CHECK(take_answer());
  return ok();
}

Result<std::vector<ByteRange>> lazy_holes(int fd, const std::string& name) {
  if (::lseek(fd, 0, SEEK_SET) < 0) return Error::sys(name + ": seek");
  auto in = ENVRUN_TRY(ImageReader::from_fd(fd, name));
  std::vector<ByteRange> out;
  while (auto h = ENVRUN_TRY(in.next())) {
    if (h->section_type() == SectionType::Pages && !h->compressed() && h->raw_size > 8)
      out.push_back({h->offset + kSectionHeaderSize + 8, h->raw_size - 8});
    ENVRUN_CHECK(in.seek_payload());
  }
  return out;
}

}  // namespace envrun::ckpt
