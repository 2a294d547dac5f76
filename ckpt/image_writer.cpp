// ImageWriter: the file header, then one section per add()/add_gather(), then End.
// Plain sections go out as header + pieces in writev(2) calls (no copy); zstd sections
// as header + chunks of kWriterChunkRaw raw bytes, each compressed on its own, so memory
// stays bounded whatever the section's size.
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "ckpt/crc32c.hpp"
#include "ckpt/image.hpp"
#include "ckpt/image_format.hpp"
#include "ckpt/image_io.hpp"

namespace envrun::ckpt {

namespace {
struct CctxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
}  // namespace

struct ImageWriter::State {
  int fd = -1;
  off_t start = -1;  // a regular file: where the image starts in it
  std::string name;
  WriterOptions options;
  uint64_t written = 0;
  uint64_t raw = 0;
  uint64_t sections = 0;
  bool finished = false;
  std::string failure;  // set after a failed write: the stream is unusable
  std::unique_ptr<ZSTD_CCtx, CctxFree> cctx;
  // Not zero-filled: one chunk's raw bytes when it spans pieces; one chunk compressed.
  std::unique_ptr<uint8_t[]> staging, zbuf;
  size_t zbuf_cap = 0;

  Result<void> write(std::span<iovec> iov, uint64_t bytes, const std::string& what) {
    if (int e = write_all_iov(fd, iov)) {
      Error err = Error::sys(name + ": write " + what, e);
      failure = err.message;
      return err;
    }
    written += bytes;
    return ok();
  }
  Error failed(Error e) {
    failure = e.message;
    return e;
  }
  Result<void> usable() const {
    if (finished) return Error::make(ErrorKind::Generic, name + ": image already finished");
    if (!failure.empty())
      return Error::make(ErrorKind::Generic, name + ": an earlier write failed (" + failure + ")");
    return ok();
  }
  Result<void> write_chunks(const SectionHeader& h, std::span<const iovec> pieces);
  Result<void> write_chunk(const SectionHeader& h, const uint8_t* src, uint32_t len);
};

ImageWriter::ImageWriter(std::unique_ptr<State> s) : s_(std::move(s)) {}
ImageWriter::ImageWriter(ImageWriter&&) noexcept = default;
ImageWriter& ImageWriter::operator=(ImageWriter&&) noexcept = default;
ImageWriter::~ImageWriter() = default;

Result<ImageWriter> ImageWriter::to_fd(int fd, std::string name, WriterOptions options) {
  auto s = std::make_unique<State>();
  s->fd = fd;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) s->start = ::lseek(fd, 0, SEEK_CUR);
  s->name = std::move(name);
  s->options = options;
  if (options.zstd) {
    if (options.zstd_level < ZSTD_minCLevel() || options.zstd_level > ZSTD_maxCLevel())
      return Error::make(ErrorKind::Usage, s->name + ": zstd level " +
                                               std::to_string(options.zstd_level) + " out of range (" +
                                               std::to_string(ZSTD_minCLevel()) + ".." +
                                               std::to_string(ZSTD_maxCLevel()) + ")");
    s->cctx.reset(ZSTD_createCCtx());
    if (!s->cctx) return Error::make(ErrorKind::System, s->name + ": zstd: cannot create a context");
    ZSTD_CCtx_setParameter(s->cctx.get(), ZSTD_c_compressionLevel, options.zstd_level);
    s->zbuf_cap = ZSTD_compressBound(kWriterChunkRaw);
    s->zbuf = std::make_unique_for_overwrite<uint8_t[]>(s->zbuf_cap);
  }
  auto header = format::encode_file_header();
  iovec iov{header.data(), header.size()};
  ENVRUN_CHECK(s->write({&iov, 1}, header.size(), "the file header"));
  return ImageWriter(std::move(s));
}

Result<void> ImageWriter::add(SectionType type, uint64_t id, std::span<const uint8_t> payload,
                              uint32_t extra_flags) {
  iovec piece{const_cast<uint8_t*>(payload.data()), payload.size()};
  return add_gather(type, id, {&piece, 1}, extra_flags);
}

Result<void> ImageWriter::add_gather(SectionType type, uint64_t id, std::span<const iovec> pieces,
                                     uint32_t extra_flags) {
  uint32_t crc = 0;
  for (const iovec& p : pieces) crc = crc32c_extend(crc, p.iov_base, p.iov_len);
  return add_gather_crc(type, id, pieces, crc, extra_flags);
}

Result<void> ImageWriter::add_gather_crc(SectionType type, uint64_t id, std::span<const iovec> pieces, uint32_t crc,
                                         uint32_t extra_flags) {
  ENVRUN_CHECK(s_->usable());
  if (type == SectionType::End)
    return Error::make(ErrorKind::Generic, s_->name + ": the end section is written by finish()");
  if (extra_flags & ~kSectionOptional)
    return Error::make(ErrorKind::Generic, s_->name + ": section flags " + format::hex32(extra_flags) +
                                               ": only the optional flag may be given");
  SectionHeader h;
  h.type = static_cast<uint32_t>(type);
  h.flags = extra_flags | (s_->options.zstd ? kSectionZstd : 0);
  h.id = id;
  for (const iovec& p : pieces) h.raw_size += p.iov_len;
  h.crc = crc;
  h.stored_size = s_->options.zstd ? 0 : h.raw_size;
  h.index = static_cast<uint32_t>(s_->sections);
  h.offset = s_->written;
  auto header = format::encode_section(h);
  if (s_->options.zstd) {
    iovec iov{header.data(), header.size()};
    ENVRUN_CHECK(s_->write({&iov, 1}, header.size(), format::describe(h)));
    ENVRUN_CHECK(s_->write_chunks(h, pieces));
  } else {
    std::vector<iovec> iov;
    iov.reserve(pieces.size() + 1);
    iov.push_back({header.data(), header.size()});
    iov.insert(iov.end(), pieces.begin(), pieces.end());
    ENVRUN_CHECK(s_->write(iov, header.size() + h.raw_size, format::describe(h)));
  }
  s_->raw += h.raw_size;
  ++s_->sections;
  return ok();
}

// Cuts the pieces into chunks of kWriterChunkRaw bytes; a chunk that spans pieces is
// copied into `staging` first (cheap next to compressing it).
Result<void> ImageWriter::State::write_chunks(const SectionHeader& h, std::span<const iovec> pieces) {
  size_t piece = 0, off = 0;
  uint64_t left = h.raw_size;
  while (left > 0) {
    while (pieces[piece].iov_len == off) ++piece, off = 0;
    auto len = static_cast<uint32_t>(std::min<uint64_t>(left, kWriterChunkRaw));
    const auto* base = static_cast<const uint8_t*>(pieces[piece].iov_base);
    if (pieces[piece].iov_len - off >= len) {
      ENVRUN_CHECK(write_chunk(h, base + off, len));
      off += len;
    } else {
      if (!staging) staging = std::make_unique_for_overwrite<uint8_t[]>(kWriterChunkRaw);
      uint32_t have = 0;
      while (have < len) {
        while (pieces[piece].iov_len == off) ++piece, off = 0;
        size_t take = std::min<size_t>(len - have, pieces[piece].iov_len - off);
        std::memcpy(staging.get() + have, static_cast<const uint8_t*>(pieces[piece].iov_base) + off, take);
        have += static_cast<uint32_t>(take);
        off += take;
      }
      ENVRUN_CHECK(write_chunk(h, staging.get(), len));
    }
    left -= len;
  }
  return ok();
}

// One chunk: compressed when that makes it smaller, kept raw otherwise.
Result<void> ImageWriter::State::write_chunk(const SectionHeader& h, const uint8_t* src, uint32_t len) {
  size_t csize = ZSTD_compress2(cctx.get(), zbuf.get(), zbuf_cap, src, len);
  if (ZSTD_isError(csize))
    return Error::make(ErrorKind::System, name + ": " + format::describe(h) +
                                              ": zstd: " + ZSTD_getErrorName(csize));
  format::Chunk c;
  c.raw_len = len;
  const uint8_t* stored = zbuf.get();
  if (csize < len) {
    c.stored_len = static_cast<uint32_t>(csize);
  } else {
    c.stored_len = len;
    c.stored_raw = true;
    stored = src;
  }
  c.crc = crc32c(stored, c.stored_len);
  auto ch = format::encode_chunk(c);
  iovec iov[2] = {{ch.data(), ch.size()}, {const_cast<uint8_t*>(stored), c.stored_len}};
  return write(iov, ch.size() + c.stored_len, format::describe(h));
}

Result<void> ImageWriter::finish() {
  ENVRUN_CHECK(s_->usable());
  auto payload = format::encode_end({s_->sections, s_->written, s_->raw});
  SectionHeader h;
  h.type = static_cast<uint32_t>(SectionType::End);
  h.raw_size = h.stored_size = payload.size();
  h.crc = crc32c(payload.data(), payload.size());
  h.index = static_cast<uint32_t>(s_->sections);
  h.offset = s_->written;
  auto header = format::encode_section(h);
  iovec iov[2] = {{header.data(), header.size()}, {payload.data(), payload.size()}};
  ENVRUN_CHECK(s_->write(iov, header.size() + payload.size(), "the end section"));
  // A regular file ends with the image: space reserved ahead (image_space.hpp), or an
  // older file's tail, would read as data after the End section.
  struct stat st {};
  off_t end = s_->start + off_t(s_->written);
  if (s_->start >= 0 && ::fstat(s_->fd, &st) == 0 && st.st_size > end && ::ftruncate(s_->fd, end) != 0)
    return s_->failed(Error::sys(s_->name + ": cut the file to the image's " + std::to_string(end) + " bytes"));
  s_->finished = true;
  return ok();
}

uint64_t ImageWriter::bytes_written() const { return s_->written; }
uint64_t ImageWriter::raw_bytes() const { return s_->raw; }
uint64_t ImageWriter::sections() const { return s_->sections; }

}  // namespace envrun::ckpt
