// ImageReader: checks the file header, then walks the sections one by one. Every fixed
// part has its own checksum; payloads are checked as they are consumed. The first
// error is sticky: a reader that failed once refuses everything after.
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "ckpt/crc32c.hpp"
#include "ckpt/image.hpp"
#include "ckpt/image_format.hpp"
#include "ckpt/image_io.hpp"

namespace envrun::ckpt {

namespace {
struct DctxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};
enum class Mode { Read, Check, Skip, Seek };
constexpr size_t kSlice = 1u << 20;  // plain payloads are read and checked in slices
}  // namespace

struct ImageReader::State {
  std::string name;
  ImageInput in;
  uint16_t major = 0, minor = 0;
  uint32_t next_index = 0;
  SectionHeader cur;
  bool have_cur = false;  // cur is a section seen (for truncation messages)
  bool pending = false;   // cur's payload is not consumed yet
  bool done = false;      // a valid End section was read
  uint64_t part_pos = 0;  // bytes of cur's plain payload read by read_payload_part
  uint32_t part_crc = 0;  // their crc32c
  std::optional<Error> failed;
  uint64_t skipped = 0, stored_last = 0, raw_total = 0, stored_total = 0;
  std::unique_ptr<ZSTD_DCtx, DctxFree> dctx;
  // Grown on demand, never zero-filled: a reader that only sees small sections stays small.
  std::unique_ptr<uint8_t[]> scratch, zbuf;
  size_t scratch_cap = 0, zbuf_cap = 0;
  static uint8_t* ensure(std::unique_ptr<uint8_t[]>& b, size_t& cap, size_t n) {
    if (cap < n) {
      b = std::make_unique_for_overwrite<uint8_t[]>(n);
      cap = n;
    }
    return b.get();
  }

  State(int fd, std::string n) : name(std::move(n)), in(fd) {}

  Error fail(ErrorKind kind, const std::string& msg) {
    failed = Error::make(kind, name + ": " + msg);
    return *failed;
  }
  Error fail_sys(const std::string& what, int e) {
    failed = Error::sys(name + ": " + what, e);
    return *failed;
  }
  // What a read is for, in an error message: `text`, or "<text> of <n> bytes" (built only
  // when the read fails: a scan of thousands of one-page sections made two strings per section).
  struct What {
    const char* text;
    uint64_t n = UINT64_MAX;
    std::string str() const { return n == UINT64_MAX ? std::string(text) : std::string(text) + " of " + std::to_string(n) + " bytes"; }
  };
  // Reads exactly n bytes or fails: "truncated in <section> at offset X: <what> cut short".
  Result<void> read_exact(uint8_t* dst, size_t n, What what) {
    uint64_t at = in.offset();
    int64_t got = in.read(dst, n);
    if (got < 0) return fail_sys("read at offset " + std::to_string(at), static_cast<int>(-got));
    if (static_cast<size_t>(got) == n) return ok();
    return fail(ErrorKind::Generic, "truncated in " + format::label(cur) + " at offset " +
                                        std::to_string(in.offset()) + ": " + what.str() + " cut short");
  }
  std::string after() const {
    return have_cur ? format::label(cur) : std::string("the file header");
  }
  Result<void> consume(uint8_t* out, Mode mode);
  Result<void> consume_plain(uint8_t* out, Mode mode);
  Result<void> skip_exact(uint64_t n, What what);
  Result<void> consume_chunks(uint8_t* out, Mode mode, uint32_t* crc);
  Result<bool> read_header();  // false: a valid End was read
  Result<void> check_end();
};

ImageReader::ImageReader(std::unique_ptr<State> s) : s_(std::move(s)) {}
ImageReader::ImageReader(ImageReader&&) noexcept = default;
ImageReader& ImageReader::operator=(ImageReader&&) noexcept = default;
ImageReader::~ImageReader() = default;

Result<ImageReader> ImageReader::from_fd(int fd, std::string name) {
  auto s = std::make_unique<State>(fd, std::move(name));
  std::vector<uint8_t> h(16);
  int64_t got = s->in.read(h.data(), 16);
  if (got < 0) return s->fail_sys("read the file header", static_cast<int>(-got));
  if (got < 16)
    return s->fail(ErrorKind::Generic, "truncated in the file header at offset " + std::to_string(got) +
                                           (got == 0 ? " (empty stream)" : ""));
  if (std::memcmp(h.data(), kImageMagic, sizeof kImageMagic) != 0)
    return s->fail(ErrorKind::Generic, "file header: bad magic: not an envrun checkpoint image");
  s->major = format::get16(&h[8]);
  s->minor = format::get16(&h[10]);
  if (s->major > kFormatMajor)
    return s->fail(ErrorKind::Generic, "format version " + std::to_string(s->major) +
                                           " is newer than this envrun (" + std::to_string(kFormatMajor) + ")");
  if (s->major == 0) return s->fail(ErrorKind::Generic, "file header: format version 0 is not valid");
  uint32_t size = format::get32(&h[12]);
  if (size < kFileHeaderSize || size > kMaxFileHeaderSize || size % 4)
    return s->fail(ErrorKind::Generic, "file header: size " + std::to_string(size) + " is not valid (" +
                                           std::to_string(kFileHeaderSize) + ".." +
                                           std::to_string(kMaxFileHeaderSize) + ", multiple of 4)");
  h.resize(size);
  got = s->in.read(h.data() + 16, size - 16);
  if (got < 0) return s->fail_sys("read the file header", static_cast<int>(-got));
  if (static_cast<size_t>(got) < size - 16)
    return s->fail(ErrorKind::Generic, "truncated in the file header at offset " + std::to_string(16 + got));
  uint32_t stored = format::get32(&h[size - 4]), computed = crc32c(h.data(), size - 4);
  if (stored != computed)
    return s->fail(ErrorKind::Generic, "file header: checksum mismatch (stored " + format::hex32(stored) +
                                           ", computed " + format::hex32(computed) + ")");
  return ImageReader(std::move(s));
}

Result<std::optional<SectionHeader>> ImageReader::next() {
  if (s_->failed) return *s_->failed;
  for (;;) {
    if (s_->done) return std::optional<SectionHeader>{};
    if (s_->pending) ENVRUN_CHECK(s_->consume(nullptr, Mode::Skip));
    bool more = ENVRUN_TRY(s_->read_header());
    if (!more) continue;  // End: done
    if (section_known(s_->cur.type)) {
      s_->pending = true;
      return std::optional<SectionHeader>{s_->cur};
    }
    if (!s_->cur.optional())
      return s_->fail(ErrorKind::Generic, format::describe(s_->cur) + ": unknown section type " +
                                              format::hex32(s_->cur.type) +
                                              " that is not optional (written by a newer envrun?)");
    s_->pending = true;
    ENVRUN_CHECK(s_->consume(nullptr, Mode::Skip));
    ++s_->skipped;
  }
}

// Reads and validates one section header into cur; an End section is checked whole.
Result<bool> ImageReader::State::read_header() {
  uint8_t b[kSectionHeaderSize];
  uint64_t at = in.offset();
  int64_t got = in.read(b, sizeof b);
  if (got < 0) return fail_sys("read at offset " + std::to_string(at), static_cast<int>(-got));
  if (static_cast<size_t>(got) < sizeof b)
    return fail(ErrorKind::Generic, "truncated after " + after() + " at offset " + std::to_string(in.offset()) +
                                        (got == 0 ? ": no end section"
                                                  : ": section header needs 48 bytes, got " + std::to_string(got)));
  bool crc_ok = false;
  uint32_t reserved = 0;
  SectionHeader h = format::decode_section(b, at, &crc_ok, &reserved);
  auto where = [&] { return "section " + std::to_string(next_index) + " at offset " + std::to_string(at); };
  if (!crc_ok)
    return fail(ErrorKind::Generic, where() + ": section header checksum mismatch (stored " +
                                        format::hex32(format::get32(b + 44)) + ", computed " +
                                        format::hex32(crc32c(b, 44)) + ")");
  if (h.index != next_index)
    return fail(ErrorKind::Generic, where() + ": section header says index " + std::to_string(h.index) +
                                        " (sections lost, repeated or reordered)");
  if (h.flags & kSectionMustUnderstand & ~kSectionKnownFlags)
    return fail(ErrorKind::Generic, format::describe(h) + ": unknown section flags " + format::hex32(h.flags) +
                                        " (written by a newer envrun?)");
  if (h.compressed() ? h.stored_size != 0 : h.stored_size != h.raw_size)
    return fail(ErrorKind::Generic, format::describe(h) + ": stored size " + std::to_string(h.stored_size) +
                                        " does not match raw size " + std::to_string(h.raw_size));
  cur = h;
  have_cur = true;
  part_pos = 0;
  part_crc = 0;
  ++next_index;
  if (h.section_type() != SectionType::End) return true;
  ENVRUN_CHECK(check_end());
  return false;
}

// The End section: plain, 24 bytes, and its totals match what the stream held.
Result<void> ImageReader::State::check_end() {
  if (cur.flags != 0 || cur.raw_size != kEndPayloadSize)
    return fail(ErrorKind::Generic, format::describe(cur) + ": end section has flags " + format::hex32(cur.flags) +
                                        " and size " + std::to_string(cur.raw_size) + " (expected 0 and 24)");
  uint8_t p[kEndPayloadSize];
  ENVRUN_CHECK(consume_plain(p, Mode::Read));
  format::EndRecord e = format::decode_end(p);
  auto mismatch = [&](const char* what, uint64_t said, uint64_t seen) {
    return fail(ErrorKind::Generic, format::describe(cur) + ": end section says " + std::to_string(said) + " " +
                                        what + ", the stream has " + std::to_string(seen));
  };
  if (e.sections != cur.index) return mismatch("sections", e.sections, cur.index);
  if (e.bytes_before != cur.offset) return mismatch("bytes before it", e.bytes_before, cur.offset);
  if (e.raw_bytes != raw_total) return mismatch("raw payload bytes", e.raw_bytes, raw_total);
  done = true;
  in.give_back();
  return ok();
}

Result<void> ImageReader::State::consume(uint8_t* out, Mode mode) {
  if (failed) return *failed;
  if (!pending)  // a misuse, not damage: the reader stays usable
    return Error::make(ErrorKind::Generic, name + ": no section payload to read (call next() first)");
  pending = false;
  if (!cur.compressed()) {
    ENVRUN_CHECK(consume_plain(out, mode));
  } else {
    uint32_t crc = 0;
    ENVRUN_CHECK(consume_chunks(out, mode, &crc));
    if (mode != Mode::Skip && mode != Mode::Seek && crc != cur.crc)
      return fail(ErrorKind::Generic, format::describe(cur) + ": payload checksum mismatch after decompression (stored " +
                                          format::hex32(cur.crc) + ", computed " + format::hex32(crc) + ")");
  }
  raw_total += cur.raw_size;
  stored_total += stored_last;
  return ok();
}

// Plain payload: read in slices (into out, or into scratch) and checksummed while hot,
// from where read_payload_part stopped; Seek skips the bytes unread (a regular file).
Result<void> ImageReader::State::consume_plain(uint8_t* out, Mode mode) {
  if (mode == Mode::Seek && in.regular()) {
    ENVRUN_CHECK(skip_exact(cur.raw_size - part_pos, What{"payload", cur.raw_size}));
    stored_last = cur.raw_size;
    return ok();
  }
  uint32_t crc = part_crc;
  for (uint64_t pos = part_pos; pos < cur.raw_size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(cur.raw_size - pos, kSlice));
    uint8_t* dst = out ? out + pos : ensure(scratch, scratch_cap, n);
    ENVRUN_CHECK(read_exact(dst, n, What{"payload", cur.raw_size}));
    crc = crc32c_extend(crc, dst, n);
    pos += n;
  }
  if (crc != cur.crc)
    return fail(ErrorKind::Generic, format::describe(cur) + ": payload checksum mismatch (stored " +
                                        format::hex32(cur.crc) + ", computed " + format::hex32(crc) + ")");
  stored_last = cur.raw_size;
  return ok();
}

// Skips exactly n bytes of a regular file or fails as read_exact does.
Result<void> ImageReader::State::skip_exact(uint64_t n, What what) {
  uint64_t at = in.offset();
  int64_t got = in.skip(n);
  if (got < 0) return fail_sys("seek at offset " + std::to_string(at), static_cast<int>(-got));
  if (static_cast<uint64_t>(got) == n) return ok();
  return fail(ErrorKind::Generic, "truncated in " + format::label(cur) + " at offset " +
                                      std::to_string(in.offset()) + ": " + what.str() + " cut short");
}

// zstd payload: chunks until raw_size bytes are produced. Skip checks the chunks' own
// checksums only; Read and Check decompress and extend *crc over the raw bytes.
Result<void> ImageReader::State::consume_chunks(uint8_t* out, Mode mode, uint32_t* crc) {
  if (!dctx) dctx.reset(ZSTD_createDCtx());
  if (!dctx) return fail(ErrorKind::System, "zstd: cannot create a decompression context");
  uint64_t produced = 0, stored = 0;
  while (produced < cur.raw_size) {
    uint64_t at = in.offset();
    auto chunk_at = [&] { return format::describe(cur) + ": payload chunk at offset " + std::to_string(at); };
    uint8_t hb[kChunkHeaderSize];
    ENVRUN_CHECK(read_exact(hb, sizeof hb, What{"payload chunk header"}));
    bool crc_ok = false;
    format::Chunk c = format::decode_chunk(hb, &crc_ok);
    if (!crc_ok) return fail(ErrorKind::Generic, chunk_at() + ": payload chunk header checksum mismatch");
    bool bad_raw = c.raw_len == 0 || c.raw_len > kMaxChunkRaw || c.raw_len > cur.raw_size - produced;
    bool bad_stored = c.stored_raw ? c.stored_len != c.raw_len
                                   : c.stored_len == 0 || c.stored_len > ZSTD_compressBound(c.raw_len);
    if (bad_raw || bad_stored)
      return fail(ErrorKind::Generic, chunk_at() + ": payload chunk sizes raw " + std::to_string(c.raw_len) +
                                          ", stored " + std::to_string(c.stored_len) + " are not valid");
    if (mode == Mode::Seek && in.regular()) {
      ENVRUN_CHECK(skip_exact(c.stored_len, What{"payload chunk", c.stored_len}));
      produced += c.raw_len;
      stored += kChunkHeaderSize + c.stored_len;
      continue;
    }
    uint8_t* dst = mode == Mode::Read ? out + produced : ensure(scratch, scratch_cap, c.raw_len);
    uint8_t* src = c.stored_raw ? dst : ensure(zbuf, zbuf_cap, c.stored_len);
    ENVRUN_CHECK(read_exact(src, c.stored_len, What{"payload chunk", c.stored_len}));
    uint32_t computed = crc32c(src, c.stored_len);
    if (computed != c.crc)
      return fail(ErrorKind::Generic, chunk_at() + ": payload chunk checksum mismatch (stored " +
                                          format::hex32(c.crc) + ", computed " + format::hex32(computed) + ")");
    if (mode == Mode::Read || mode == Mode::Check) {
      if (!c.stored_raw) {
        size_t r = ZSTD_decompressDCtx(dctx.get(), dst, c.raw_len, src, c.stored_len);
        if (ZSTD_isError(r) || r != c.raw_len)
          return fail(ErrorKind::Generic, chunk_at() + ": payload chunk does not decompress to " +
                                              std::to_string(c.raw_len) + " bytes" +
                                              (ZSTD_isError(r) ? std::string(": ") + ZSTD_getErrorName(r) : ""));
      }
      *crc = crc32c_extend(*crc, dst, c.raw_len);
    }
    produced += c.raw_len;
    stored += kChunkHeaderSize + c.stored_len;
  }
  stored_last = stored;
  return ok();
}

Result<void> ImageReader::read_payload(std::span<uint8_t> out) {
  if (s_->failed) return *s_->failed;
  if (s_->pending && s_->part_pos)
    return Error::make(ErrorKind::Generic, s_->name + ": " + format::describe(s_->cur) +
                                               ": payload partly read already (read_payload_part)");
  if (s_->pending && out.size() != s_->cur.raw_size)
    return Error::make(ErrorKind::Generic, s_->name + ": " + format::describe(s_->cur) + ": buffer of " +
                                               std::to_string(out.size()) + " bytes for a payload of " +
                                               std::to_string(s_->cur.raw_size));
  uint8_t dummy = 0;
  return s_->consume(out.empty() ? &dummy : out.data(), Mode::Read);
}

Result<std::vector<uint8_t>> ImageReader::read_payload() {
  if (s_->failed) return *s_->failed;
  std::vector<uint8_t> v;
  if (s_->pending) {
    try {
      v.resize(s_->cur.raw_size);
    } catch (const std::exception&) {
      return s_->fail(ErrorKind::System, format::describe(s_->cur) + ": cannot allocate " +
                                             std::to_string(s_->cur.raw_size) + " bytes for the payload");
    }
  }
  ENVRUN_CHECK(read_payload(std::span<uint8_t>(v)));
  return v;
}

Result<void> ImageReader::skip_payload() { return s_->consume(nullptr, Mode::Skip); }
Result<void> ImageReader::check_payload() { return s_->consume(nullptr, Mode::Check); }
void ImageReader::drop_read_ahead() { s_->in.give_back(); }

Result<void> ImageReader::seek_payload() {
  return s_->consume(nullptr, s_->in.regular() ? Mode::Seek : Mode::Check);
}

Result<void> ImageReader::read_payload_part(std::span<uint8_t> out) {
  State& st = *s_;
  if (st.failed) return *st.failed;
  auto misuse = [&](const std::string& why) { return Error::make(ErrorKind::Generic, st.name + ": " + why); };
  if (!st.pending) return misuse("no section payload to read (call next() first)");
  if (st.cur.compressed()) return misuse(format::describe(st.cur) + ": a zstd payload is read whole");
  if (out.size() > st.cur.raw_size - st.part_pos)
    return misuse(format::describe(st.cur) + ": part of " + std::to_string(out.size()) + " bytes at " +
                  std::to_string(st.part_pos) + " runs past the payload of " + std::to_string(st.cur.raw_size));
  ENVRUN_CHECK(st.read_exact(out.data(), out.size(), State::What{"payload", st.cur.raw_size}));
  st.part_crc = crc32c_extend(st.part_crc, out.data(), out.size());
  st.part_pos += out.size();
  if (st.part_pos < st.cur.raw_size) return ok();
  return st.consume(nullptr, Mode::Read);  // nothing left to read: checks the crc, counts the payload
}

uint16_t ImageReader::format_major() const { return s_->major; }
uint16_t ImageReader::format_minor() const { return s_->minor; }
uint64_t ImageReader::offset() const { return s_->in.offset(); }
uint64_t ImageReader::skipped_optional() const { return s_->skipped; }
uint64_t ImageReader::stored_bytes_last() const { return s_->stored_last; }
uint64_t ImageReader::raw_bytes_total() const { return s_->raw_total; }
uint64_t ImageReader::stored_bytes_total() const { return s_->stored_total; }

}  // namespace envrun::ckpt
