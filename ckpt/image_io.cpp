// The image's byte pipes; see image_io.hpp.
#include "ckpt/image_io.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
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
constexpr size_t kHeaderRefill = 512;
// From the mapping: reads shorter than this (page payloads go through pread, which
// costs no page-table set-up for memory read once).
constexpr size_t kMapReadMax = 16 * 1024;

// One read(2) that retries on EINTR: count, 0 at end of stream, or -errno.
// A regular file is read at `at` (pread: a scan that seeks over payloads needs no
// lseek); a stream from where it is (at < 0).
int64_t read_once(int fd, uint8_t* dst, size_t n, int64_t at = -1) {
  for (;;) {
    ssize_t r = at >= 0 ? ::pread(fd, dst, std::min<size_t>(n, 1u << 30), off_t(at))
                        : ::read(fd, dst, std::min<size_t>(n, 1u << 30));
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}
}  // namespace

ImageInput::ImageInput(int fd) : fd_(fd) {
  struct stat st {};
  regular_ = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (regular_) {
    buf_.resize(kReadAhead);
    size_ = uint64_t(st.st_size);
    off_t at = ::lseek(fd, 0, SEEK_CUR);
    fd_off_ = at > 0 ? uint64_t(at) : 0;
    map_file();
  }
}

bool ImageInput::map_file() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_len_);
  map_ = nullptr, map_len_ = 0;
  if (size_ == 0) return false;
  void* m = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
  if (m == MAP_FAILED) return false;
  map_ = static_cast<const uint8_t*>(m), map_len_ = size_;
  return true;
}

int64_t ImageInput::read(uint8_t* dst, size_t n) {
  size_t got = 0;
  if (map_ && pos_ == len_ && n < kMapReadMax) {
    if (fd_off_ + n > map_len_) {  // past the mapping: the file may have grown
      struct stat st {};
      if (::fstat(fd_, &st) == 0 && uint64_t(st.st_size) > map_len_) {
        size_ = uint64_t(st.st_size);
        map_file();
      }
    }
    if (map_ && fd_off_ + n <= map_len_) {
      std::memcpy(dst, map_ + fd_off_, n);
      fd_off_ += n;
      sought_ = false;
      offset_ += n;
      return static_cast<int64_t>(n);
    }
  }
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
    // After a seek over a payload the next section header is wanted, not what follows
    // it (a scan seeks again at once): a small refill.
    size_t refill = sought_ ? std::max<size_t>(need, kHeaderRefill) : buf_.size();
    if (regular_ && need < refill) {
      r = read_once(fd_, buf_.data(), refill, regular_ ? int64_t(fd_off_) : -1);
      if (r > 0) {
        fd_off_ += uint64_t(r);
        sought_ = false;
        pos_ = 0;
        len_ = static_cast<size_t>(r);
        continue;
      }
    } else {
      r = read_once(fd_, dst + got, need, regular_ ? int64_t(fd_off_) : -1);
      if (r > 0) {
        fd_off_ += uint64_t(r);
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
    if (fd_off_ + (n - got) > size_) {  // past the size seen: it may have grown
      struct stat st {};
      if (::fstat(fd_, &st) != 0) return -errno;
      size_ = uint64_t(st.st_size);
    }
    uint64_t left = size_ > fd_off_ ? size_ - fd_off_ : 0;
    uint64_t step = std::min(n - got, left);
    fd_off_ += step;  // the fd's own offset follows in sync() (give_back, the destructor)
    sought_ = step > 0;
    got += step;
  }
  offset_ += got;
  return static_cast<int64_t>(got);
}

void ImageInput::give_back() {
  if (regular_ && pos_ < len_) {
    fd_off_ -= len_ - pos_;
    pos_ = len_ = 0;
  }
  sync();
}

void ImageInput::sync() {
  if (regular_ && fd_ >= 0) ::lseek(fd_, off_t(fd_off_), SEEK_SET);
}

ImageInput::~ImageInput() {
  sync();
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_len_);
}

ImageInput::ImageInput(ImageInput&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), regular_(o.regular_), sought_(o.sought_), size_(o.size_), fd_off_(o.fd_off_),
      map_(std::exchange(o.map_, nullptr)), map_len_(std::exchange(o.map_len_, 0)),
      buf_(std::move(o.buf_)), pos_(o.pos_), len_(o.len_), offset_(o.offset_) {}

}  // namespace envrun::ckpt
