// The checkpoint image container: one sequential stream of typed, checksummed sections.
// The same bytes go to a file (DIR/envrun.img), a pipe or a socket; each section may be
// zstd-compressed. This layer knows nothing about payloads: the engine decides them.
// The on-disk layout is documented in envrun-image(5); every number is little-endian.
//
//   file header   32 bytes: "ENVRUNCK", major, minor, header size, reserved, crc32c
//   section       48-byte header (type, flags, id, raw size, stored size, payload crc,
//                 index, header crc) + payload (plain bytes, or zstd chunks)
//   ...
//   end section   type End, payload: section count, bytes before it, raw bytes
//
// Errors name the image (the name given to to_fd/from_fd), the section index, its type,
// its id and the stream offset: "envrun.img: section 3 (pages, id 7) at offset 4096: ...".
#pragma once
#include <sys/uio.h>

#include <array>
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kernel/result.hpp"

namespace envrun::ckpt {

enum class SectionType : uint32_t {
  Inventory = 1,
  ProcessTree = 2,
  ProcessCore = 3,
  ThreadRegs = 4,
  ThreadXstate = 5,
  Mm = 6,
  Pages = 7,
  Files = 8,
  FileData = 9,
  SharedMem = 10,
  ParentPages = 11,  // incremental images: page ranges the parent image holds (payload: u64 address, u64 pages)*
  End = 0x454e4400,  // "\0DNE" read as little-endian: "END" in a hex dump
};

// "inventory", "process-tree", ..., "end"; anything else -> "unknown".
const char* section_name(SectionType type);
// True for the types this build understands (End included).
bool section_known(uint32_t type);

inline constexpr char kImageMagic[8] = {'E', 'N', 'V', 'R', 'U', 'N', 'C', 'K'};
inline constexpr uint16_t kFormatMajor = 1;
inline constexpr uint16_t kFormatMinor = 0;
inline constexpr uint32_t kFileHeaderSize = 32;     // what this version writes
inline constexpr uint32_t kMaxFileHeaderSize = 4096;  // what a reader accepts (newer minors)
inline constexpr uint32_t kSectionHeaderSize = 48;

// Section flags. Bits 0-15 must be understood by a reader (unknown ones are refused);
// bits 16-31 may be ignored by a reader that does not know them.
inline constexpr uint32_t kSectionZstd = 1u << 0;      // payload is a sequence of zstd chunks
inline constexpr uint32_t kSectionOptional = 1u << 1;  // unknown type may be skipped
inline constexpr uint32_t kSectionMustUnderstand = 0xffffu;
inline constexpr uint32_t kSectionKnownFlags = kSectionZstd | kSectionOptional;

// A zstd section's payload: chunks of at most kMaxChunkRaw raw bytes each, each with
// a 16-byte chunk header (raw length, stored length | kChunkStoredRaw, crc32c of the
// stored bytes, crc32c of the first 12 bytes). The writer cuts chunks of kWriterChunkRaw.
inline constexpr uint32_t kChunkHeaderSize = 16;
inline constexpr uint32_t kMaxChunkRaw = 4u << 20;
inline constexpr uint32_t kWriterChunkRaw = 1u << 20;
inline constexpr uint32_t kChunkStoredRaw = 1u << 31;  // chunk kept uncompressed (did not shrink)

inline constexpr uint64_t kEndPayloadSize = 24;

struct SectionHeader {
  uint32_t type = 0;         // a SectionType value (maybe one this build does not know)
  uint32_t flags = 0;        // kSection* bits
  uint64_t id = 0;           // what the engine says: a pid, a tid, a file id
  uint64_t raw_size = 0;     // payload bytes after decompression
  uint64_t stored_size = 0;  // payload bytes in the stream; 0 for zstd sections (chunked)
  uint32_t crc = 0;          // crc32c of the raw payload
  uint32_t index = 0;        // position in the stream: 0, 1, 2, ...
  // Not stored: where this header starts in the stream.
  uint64_t offset = 0;

  SectionType section_type() const { return static_cast<SectionType>(type); }
  bool compressed() const { return (flags & kSectionZstd) != 0; }
  bool optional() const { return (flags & kSectionOptional) != 0; }
};

struct WriterOptions {
  bool zstd = false;
  int zstd_level = 1;
};

class ImageWriter {
 public:
  // Writes the file header at once. Does not own fd; name is for messages.
  static Result<ImageWriter> to_fd(int fd, std::string name, WriterOptions options = {});
  ImageWriter(ImageWriter&&) noexcept;
  ImageWriter& operator=(ImageWriter&&) noexcept;
  ~ImageWriter();

  // extra_flags: kSectionOptional for sections an older reader may skip.
  Result<void> add(SectionType type, uint64_t id, std::span<const uint8_t> payload,
                   uint32_t extra_flags = 0);
  // The payload is the concatenation of the pieces; uncompressed it goes out with the
  // header in writev(2) calls, without a copy.
  Result<void> add_gather(SectionType type, uint64_t id, std::span<const iovec> pieces,
                          uint32_t extra_flags = 0);
  // add_gather() with the payload's crc32c computed by the caller, who read the bytes
  // last and has them in cache (the memory dump). A wrong crc makes an image that every
  // reader refuses at this section.
  Result<void> add_gather_crc(SectionType type, uint64_t id, std::span<const iovec> pieces, uint32_t crc,
                              uint32_t extra_flags = 0);
  // Writes the End section; nothing may be added after. A writer never finished leaves
  // an image that every reader refuses as truncated. On a regular file the file is cut
  // right after the End section (space reserved ahead by reserve_image_space, or the
  // tail of an older file, is dropped).
  Result<void> finish();

  uint64_t bytes_written() const;  // stream bytes so far, file header included
  uint64_t raw_bytes() const;      // payload bytes before compression, End excluded
  uint64_t sections() const;       // sections added, End excluded

 private:
  struct State;
  explicit ImageWriter(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

class ImageReader {
 public:
  // Reads and checks the file header (magic, version, checksum). Does not own fd.
  static Result<ImageReader> from_fd(int fd, std::string name);
  ImageReader(ImageReader&&) noexcept;
  ImageReader& operator=(ImageReader&&) noexcept;
  ~ImageReader();

  // The next section's header; std::nullopt after a valid End section. A payload not
  // read is skipped (checksums still verified). Unknown optional sections are skipped
  // and counted (skipped_optional()); unknown other sections are an error.
  Result<std::optional<SectionHeader>> next();
  // The current section's payload; out.size() must equal raw_size. Decompresses and
  // verifies every checksum.
  Result<void> read_payload(std::span<uint8_t> out);
  Result<std::vector<uint8_t>> read_payload();
  // Consumes the payload, verifying the stored checksums (for a zstd section, those
  // of its chunks) without keeping it.
  Result<void> skip_payload();
  // Consumes the payload, decompressing it into a bounded scratch buffer and verifying
  // every checksum (what verify_image does).
  Result<void> check_payload();
  // Reads the next out.size() bytes of the current payload, which must be plain (not
  // zstd: read those whole); the payload's checksum is checked when its last byte is
  // read. Restore feeds big payloads through bounded buffers so.
  Result<void> read_payload_part(std::span<uint8_t> out);
  // Consumes the payload without reading its bytes: on a regular file they are sought
  // over (of a zstd payload, its chunk headers are read and checked), so only their
  // presence is checked, not their checksums; other streams read them as check_payload().
  Result<void> seek_payload();
  // Forgets bytes read ahead (the file changed under the reader: a post-copy fetch).
  void drop_read_ahead();

  uint16_t format_major() const;
  uint16_t format_minor() const;
  uint64_t offset() const;             // bytes consumed from the stream
  uint64_t skipped_optional() const;   // unknown optional sections skipped by next()
  uint64_t stored_bytes_last() const;  // stream bytes of the last consumed payload
  // Sums over every consumed payload (skipped optional ones included, End excluded).
  uint64_t raw_bytes_total() const;
  uint64_t stored_bytes_total() const;

 private:
  struct State;
  explicit ImageReader(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

struct SectionTotals {
  uint64_t count = 0;
  uint64_t raw_bytes = 0;
  uint64_t stored_bytes = 0;  // payload bytes in the stream (chunk headers included)
};

struct ImageSummary {
  uint16_t format_major = 0;
  uint16_t format_minor = 0;
  uint64_t sections = 0;  // End excluded, skipped optional sections included
  uint64_t raw_bytes = 0;
  uint64_t stored_bytes = 0;
  uint64_t total_bytes = 0;  // the whole stream, End section included
  uint64_t skipped_optional = 0;
  bool end_present = false;  // always true in a summary returned without error
  // Indexed by SectionType value 1..11; [0] collects unknown optional types.
  std::array<SectionTotals, 12> by_type{};
  SectionTotals& of(SectionType t);
  const SectionTotals& of(SectionType t) const;
};

// Reads the whole stream: every header, every payload (decompressed and checked), the
// End section and its totals. On a regular file, bytes after the End section are an
// error. Restore calls this before it touches anything.
Result<ImageSummary> verify_image(int fd, std::string name);
// verify_image() without reading the payloads (seek_payload()): every section header,
// zstd chunk header, the End section and its totals, nothing after it. Refuses a
// truncated image, a damaged header, a section lost, repeated or reordered at the cost
// of a few small reads; a damaged payload is found by the reader that consumes it (the
// restore checks each payload before the restored processes may run).
Result<ImageSummary> scan_image(int fd, std::string name);
// The same, calling visit(header, reader) for every section before its payload is
// sought over (visit may read a part of it with read_payload_part).
using SectionVisitor = std::function<Result<void>(const SectionHeader&, ImageReader&)>;
Result<ImageSummary> scan_image(int fd, std::string name, const SectionVisitor& visit);

}  // namespace envrun::ckpt
