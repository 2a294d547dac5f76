// The image reader's fast paths (ckpt/image.hpp): scan_image (headers only, payloads
// sought over), read_payload_part (a payload through a bounded buffer, its crc checked
// at the last byte) and ImageWriter::add_gather_crc (the caller's crc). What the first
// two do not check must be caught by the reader that consumes the payloads.
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "ckpt/crc32c.hpp"
#include "ckpt/image.hpp"
#include "kernel/fd.hpp"

using namespace envrun;
using namespace envrun::ckpt;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes pattern(size_t n, uint64_t seed) {
  Bytes b(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b[i] = static_cast<uint8_t>(i % 3 ? x : 'a' + i % 7);  // part random, part compressible
  }
  return b;
}

UniqueFd file_with(const Bytes& bytes, size_t len) {
  UniqueFd fd(::memfd_create("ckpt-scan-test", 0));
  REQUIRE(fd);
  REQUIRE(::write(fd.get(), bytes.data(), len) == static_cast<ssize_t>(len));
  ::lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

Bytes slurp(int fd) {
  Bytes all(static_cast<size_t>(::lseek(fd, 0, SEEK_END)));
  REQUIRE(::pread(fd, all.data(), all.size(), 0) == static_cast<ssize_t>(all.size()));
  return all;
}

// An image of three sections (the middle one 300 KiB) and where each payload starts.
struct Img {
  Bytes bytes;
  std::vector<Bytes> payloads;
  std::vector<uint64_t> header_at;  // End last
};

Img make_image(bool zstd) {
  UniqueFd fd(::memfd_create("ckpt-scan-img", 0));
  auto w = ImageWriter::to_fd(fd.get(), "scan.img", {zstd, 1});
  REQUIRE(w.ok());
  Img img;
  img.payloads = {Bytes{'{', '}'}, pattern(300 << 10, 1), pattern(100, 2)};
  SectionType types[] = {SectionType::Inventory, SectionType::Pages, SectionType::ThreadRegs};
  for (size_t i = 0; i < 3; ++i) {
    img.header_at.push_back(w->bytes_written());
    REQUIRE(w->add(types[i], i + 1, img.payloads[i]).ok());
  }
  img.header_at.push_back(w->bytes_written());
  REQUIRE(w->finish().ok());
  img.bytes = slurp(fd.get());
  return img;
}

std::string scan_error(const Bytes& b, size_t len) {
  UniqueFd fd = file_with(b, len);
  auto s = scan_image(fd.get(), "scan.img");
  return s.ok() ? std::string("<accepted>") : s.error().message;
}

// Reads every payload, the pages one in parts of `part` bytes; the first error or "".
std::string read_all(const Bytes& b, size_t part) {
  UniqueFd fd = file_with(b, b.size());
  auto r = ImageReader::from_fd(fd.get(), "scan.img");
  if (!r) return r.error().message;
  for (;;) {
    auto h = r->next();
    if (!h) return h.error().message;
    if (!*h) return "";
    Bytes buf((*h)->raw_size);
    if ((*h)->section_type() == SectionType::Pages && !(*h)->compressed()) {
      for (size_t at = 0; at < buf.size(); at += part) {
        auto p = r->read_payload_part(std::span<uint8_t>(buf.data() + at, std::min(part, buf.size() - at)));
        if (!p) return p.error().message;
      }
    } else if (auto p = r->read_payload(buf); !p) {
      return p.error().message;
    }
  }
}

}  // namespace

TEST_CASE("scan_image: a whole image gives verify_image's totals") {
  bool zstd = GENERATE(false, true);
  Img img = make_image(zstd);
  UniqueFd fd = file_with(img.bytes, img.bytes.size());
  auto scanned = scan_image(fd.get(), "scan.img");
  REQUIRE(scanned.ok());
  ::lseek(fd.get(), 0, SEEK_SET);
  auto verified = verify_image(fd.get(), "scan.img");
  REQUIRE(verified.ok());
  CHECK(scanned->sections == 3);
  CHECK(scanned->sections == verified->sections);
  CHECK(scanned->raw_bytes == verified->raw_bytes);
  CHECK(scanned->stored_bytes == verified->stored_bytes);
  CHECK(scanned->total_bytes == img.bytes.size());
  CHECK(scanned->of(SectionType::Pages).raw_bytes == (300u << 10));
}

TEST_CASE("scan_image: every truncation point is refused as truncated") {
  bool zstd = GENERATE(false, true);
  Img img = make_image(zstd);
  for (size_t len = 0; len < img.bytes.size(); len += (len > 2000 && len < img.bytes.size() - 2000) ? 997 : 1) {
    std::string msg = scan_error(img.bytes, len);
    INFO("zstd " << zstd << " length " << len << ": " << msg);
    CHECK_THAT(msg, Catch::StartsWith("scan.img: truncated"));
    if (!zstd && len == img.header_at[1] + 48 + 1000)
      CHECK_THAT(msg, Catch::Contains("truncated in section 1 (pages, id 2)") && Catch::Contains("cut short"));
  }
  Bytes longer = img.bytes;
  longer.push_back(0);
  CHECK_THAT(scan_error(longer, longer.size()), Catch::Contains("data after the end section"));
}

TEST_CASE("scan_image: damaged headers refused; a damaged payload is left to the reader, which refuses it") {
  bool zstd = GENERATE(false, true);
  Img img = make_image(zstd);
  // Every byte of every section header (End's payload too) is checked by the scan.
  for (size_t k = 0; k < img.header_at.size(); ++k)
    for (size_t pos = img.header_at[k]; pos < img.header_at[k] + 48; ++pos) {
      Bytes bad = img.bytes;
      bad[pos] ^= 0x10;
      INFO("zstd " << zstd << " section " << k << " byte " << pos);
      CHECK(scan_error(bad, bad.size()) != "<accepted>");
    }
  Bytes bad = img.bytes;
  bad[img.header_at.back() + 48 + 3] ^= 1;  // End's totals
  CHECK_THAT(scan_error(bad, bad.size()), Catch::Contains("end"));
  // A payload byte deep in the pages: the scan does not read it (a zstd chunk's header
  // is read, its data not); the reader finds it, in parts or whole.
  bad = img.bytes;
  bad[img.header_at[1] + (zstd ? 48 + 16 + 1000 : 48 + 200000)] ^= 0x40;  // zstd: past the chunk header
  CHECK(scan_error(bad, bad.size()) == "<accepted>");
  for (size_t part : {size_t{4096}, size_t{65536 + 8}, size_t{1} << 20}) {
    INFO("part " << part);
    CHECK_THAT(read_all(bad, part), Catch::Contains("section 1 (pages, id 2)") && Catch::Contains("checksum mismatch"));
  }
  CHECK(read_all(img.bytes, 4096) == "");
}

TEST_CASE("read_payload_part: parts make the payload; next() after a part checks the rest") {
  Img img = make_image(false);
  for (size_t part : {size_t{1}, size_t{4095}, size_t{4096}, size_t{100000}, size_t{300} << 10}) {
    INFO("part " << part);
    UniqueFd fd = file_with(img.bytes, img.bytes.size());
    auto r = ImageReader::from_fd(fd.get(), "scan.img");
    REQUIRE(r.ok());
    REQUIRE(r->next().ok());  // inventory, skipped
    auto h = r->next();
    REQUIRE((h.ok() && h->has_value()));
    Bytes got((*h)->raw_size);
    for (size_t at = 0; at < got.size(); at += std::min(part, got.size() - at))
      REQUIRE(r->read_payload_part(std::span<uint8_t>(got.data() + at, std::min(part, got.size() - at))).ok());
    CHECK(got == img.payloads[1]);
    CHECK(r->raw_bytes_total() == img.payloads[0].size() + img.payloads[1].size());
    auto regs = r->next();
    REQUIRE((regs.ok() && regs->has_value()));
    CHECK((*regs)->id == 3);
  }
  // A damaged byte after the part read: next() consumes the rest and refuses it.
  Bytes bad = img.bytes;
  bad[img.header_at[1] + 48 + 250000] ^= 2;
  UniqueFd fd = file_with(bad, bad.size());
  auto r = ImageReader::from_fd(fd.get(), "scan.img");
  REQUIRE(r.ok());
  REQUIRE(r->next().ok());
  REQUIRE(r->next().ok());
  Bytes some(4096);
  REQUIRE(r->read_payload_part(some).ok());
  auto after = r->next();
  REQUIRE(!after.ok());
  CHECK_THAT(after.error().message, Catch::Contains("section 1 (pages, id 2)") && Catch::Contains("checksum mismatch"));
}

TEST_CASE("read_payload_part: misuse is refused without damaging the reader") {
  Img img = make_image(false);
  UniqueFd fd = file_with(img.bytes, img.bytes.size());
  auto r = ImageReader::from_fd(fd.get(), "scan.img");
  REQUIRE(r.ok());
  Bytes one(1);
  CHECK_THAT(r->read_payload_part(one).error().message, Catch::Contains("call next() first"));
  REQUIRE(r->next().ok());
  REQUIRE(r->next().ok());  // pages, 300 KiB
  Bytes big((300 << 10) + 1);
  CHECK_THAT(r->read_payload_part(big).error().message, Catch::Contains("runs past the payload"));
  REQUIRE(r->read_payload_part(one).ok());
  Bytes whole(300 << 10);
  CHECK_THAT(r->read_payload(whole).error().message, Catch::Contains("partly read"));
  auto regs = r->next();  // still usable: the rest is consumed and checked
  REQUIRE(regs.ok());
  CHECK((*regs)->id == 3);

  Img z = make_image(true);
  UniqueFd zfd = file_with(z.bytes, z.bytes.size());
  auto zr = ImageReader::from_fd(zfd.get(), "scan.img");
  REQUIRE(zr.ok());
  REQUIRE(zr->next().ok());
  REQUIRE(zr->next().ok());
  CHECK_THAT(zr->read_payload_part(one).error().message, Catch::Contains("zstd payload is read whole"));
}

TEST_CASE("add_gather_crc: the caller's crc is what the reader checks") {
  bool zstd = GENERATE(false, true);
  Bytes addr{1, 2, 3, 4, 5, 6, 7, 8}, pages = pattern(3 * 4096, 5);
  uint32_t good = crc32c_extend(crc32c(addr.data(), 8), pages.data(), pages.size());
  for (uint32_t crc : {good, good ^ 1u}) {
    INFO("zstd " << zstd << " crc " << (crc == good ? "right" : "wrong"));
    UniqueFd fd(::memfd_create("ckpt-crc", 0));
    auto w = ImageWriter::to_fd(fd.get(), "crc.img", {zstd, 1});
    REQUIRE(w.ok());
    iovec iov[2] = {{addr.data(), 8}, {pages.data(), pages.size()}};
    REQUIRE(w->add_gather_crc(SectionType::Pages, 9, std::span<const iovec>(iov, 2), crc).ok());
    REQUIRE(w->finish().ok());
    ::lseek(fd.get(), 0, SEEK_SET);
    auto v = verify_image(fd.get(), "crc.img");
    if (crc == good) {
      CHECK(v.ok());
    } else {
      REQUIRE(!v.ok());
      CHECK_THAT(v.error().message, Catch::Contains("section 0 (pages, id 9)") && Catch::Contains("checksum mismatch"));
    }
  }
}
