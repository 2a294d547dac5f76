// The image's byte pipes; see image_io.hpp.
#include "ckpt/image_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace envrun::ckpt {

int write_all_iov(int fd, std::span<iovec> iov) {
  size_t i = 0;
  while (i < iov.size()) {
    if (iov[i].iov_len == 0) {
      ++i;
      continue;
    }
    int count = static_cast<int>(std::min<size_t>(iov.size() - i, IOV_MAX));
    ssize_t w = ::writev(fd, &iov[i], count);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    auto left = static_cast<size_t>(w);
    while (left > 0 && i < iov.size()) {
      if (left >= iov[i].iov_len) {
        left -= iov[i].iov_len;
        ++i;
      } else {
        iov[i].iov_base = static_cast<uint8_t*>(iov[i].iov_base) + left;
        iov[i].iov_len -= left;
        left = 0;
      }
    }
  }
  return 0;
}

namespace {
// Enough for a run of small sections (headers, registers) per read(2); small, because
// what it holds of a big payload is copied once more (a 256 KiB read-ahead copied a
// quarter of every 1 MiB page part twice).
constexpr size_t kReadAhead = 8 * 1024;

// One read(2) that retries on EINTR: count, 0 at end of stream, or -errno.
int64_t read_once(int fd, uint8_t* dst, size_t n) {
  for (;;) {
    ssize_t r = ::read(fd, dst, std::min<size_t>(n, 1u << 30));
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}
}  // namespace

ImageInput::ImageInput(int fd) : fd_(fd) {
  struct stat st {};
  regular_ = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (regular_) buf_.resize(kReadAhead);
}

int64_t ImageInput::read(uint8_t* dst, size_t n) {
  size_t got = 0;
  while (got < n) {
    if (pos_ < len_) {
      size_t take = std::min(len_ - pos_, n - got);
      std::memcpy(dst + got, buf_.data() + pos_, take);
      pos_ += take;
      got += take;
      continue;
    }
    size_t need = n - got;
    int64_t r;
    if (regular_ && need < buf_.size()) {
      r = read_once(fd_, buf_.data(), buf_.size());
      if (r > 0) {
        pos_ = 0;
        len_ = static_cast<size_t>(r);
        continue;
      }
    } else {
      r = read_once(fd_, dst + got, need);
      if (r > 0) {
        got += static_cast<size_t>(r);
        continue;
      }
    }
    if (r < 0) return r;
    break;  // end of stream
  }
  offset_ += got;
  return static_cast<int64_t>(got);
}

int64_t ImageInput::skip(uint64_t n) {
  if (!regular_) return -ESPIPE;
  uint64_t got = std::min<uint64_t>(len_ - pos_, n);
  pos_ += got;
  if (got < n) {
    struct stat st {};
    off_t at = ::lseek(fd_, 0, SEEK_CUR);
    if (at < 0 || ::fstat(fd_, &st) != 0) return -errno;
    uint64_t left = st.st_size > at ? uint64_t(st.st_size - at) : 0;
    uint64_t step = std::min(n - got, left);
    if (step && ::lseek(fd_, off_t(step), SEEK_CUR) < 0) return -errno;
    got += step;
  }
  offset_ += got;
  return static_cast<int64_t>(got);
}

void ImageInput::give_back() {
  if (regular_ && pos_ < len_) {
    ::lseek(fd_, -static_cast<off_t>(len_ - pos_), SEEK_CUR);
    pos_ = len_ = 0;
  }
}

}  // namespace envrun::ckpt
