// Internal: the image's byte pipes. write_all_iov() pushes iovecs out whole (short writes,
// EINTR, IOV_MAX); ImageInput reads exactly what the reader asks for (a pipe or socket is
// never read past the image; a regular file is read ahead and repositioned at the end).
// A regular file is also mapped: small reads (section headers, registers, ranges) copy
// from the mapping, so that a scan over thousands of one-page sections costs no syscall
// per header; payloads of kMapReadMax bytes or more are read with pread, straight into
// the caller's buffer.
#pragma once
#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <vector>

namespace envrun::ckpt {

// Writes every byte of iov (which it modifies). Returns 0 or an errno value (EPIPE
// included: the caller reports it; SIGPIPE is the caller's business).
int write_all_iov(int fd, std::span<iovec> iov);

class ImageInput {
 public:
  explicit ImageInput(int fd);
  ImageInput(ImageInput&& o) noexcept;
  ImageInput& operator=(ImageInput&&) = delete;
  ImageInput(const ImageInput&) = delete;
  // A regular file's fd offset is left after the bytes read (read-ahead included).
  ~ImageInput();
  // Reads up to n bytes into dst, stopping early only at end of stream. Returns the
  // count, or -errno.
  int64_t read(uint8_t* dst, size_t n);
  // Skips up to n bytes of a regular file without reading them (read-ahead first, then
  // the next pread starts further on), stopping at the end of the file. Returns the count, or -errno; -ESPIPE for a
  // stream that is not a regular file (the caller reads instead).
  int64_t skip(uint64_t n);
  // Bytes consumed by the reader (not by read-ahead).
  uint64_t offset() const { return offset_; }
  // Gives back read-ahead bytes to a regular file (its fd offset set after the bytes
  // consumed); a no-op otherwise.
  void give_back();
  // True when the fd is a regular file.
  bool regular() const { return regular_; }

 private:
  int fd_;
  bool regular_ = false;
  bool sought_ = false;   // the last move was an lseek over a payload: the next refill is small
  uint64_t size_ = 0;     // the regular file's size as last seen (fstat again only past it)
  uint64_t fd_off_ = 0;   // where the next read of a regular file starts (pread)
  void sync();            // the fd's offset := fd_off_
  bool map_file();        // map [0, size_) read-only; false: reads use the buffer
  const uint8_t* map_ = nullptr;
  uint64_t map_len_ = 0;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  uint64_t offset_ = 0;
};

}  // namespace envrun::ckpt
