// The checkpoint image container (ckpt/image.hpp): round trips through files and pipes,
// plain and zstd; every truncation point and every flipped bit of small images refused
// with a message that names the damaged part; versioning; unknown sections; crc32c
// vectors; throughput figures (printed, never asserted).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ckpt/crc32c.hpp"
#include "ckpt/image.hpp"
#include "ckpt/image_format.hpp"
#include "kernel/fd.hpp"

using namespace envrun;
using namespace envrun::ckpt;

namespace {

using Bytes = std::vector<uint8_t>;

// Pseudo-random bytes (xorshift64), different per seed.
Bytes random_bytes(size_t n, uint64_t seed) {
  Bytes b(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(b.data() + i, &x, std::min<size_t>(8, n - i));
  }
  return b;
}

// Half random, half repeated text: both kinds of zstd chunk (kept raw, compressed).
Bytes mixed_bytes(size_t n, uint64_t seed) {
  Bytes b = random_bytes(n, seed);
  const char text[] = "envrun checkpoint page with a counter and some text; ";
  for (size_t i = n / 2; i < n; ++i) b[i] = static_cast<uint8_t>(text[i % (sizeof text - 1)]);
  return b;
}

UniqueFd memfile() { return UniqueFd(::memfd_create("ckpt-image-test", 0)); }

Bytes slurp(int fd) {
  Bytes all;
  ::lseek(fd, 0, SEEK_SET);
  uint8_t buf[65536];
  ssize_t r;
  while ((r = ::read(fd, buf, sizeof buf)) > 0) all.insert(all.end(), buf, buf + r);
  return all;
}

UniqueFd memfile_with(const Bytes& bytes, size_t len) {
  UniqueFd fd = memfile();
  REQUIRE(::write(fd.get(), bytes.data(), len) == static_cast<ssize_t>(len));
  ::lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

struct Sec {
  SectionType type;
  uint64_t id;
  Bytes data;
  std::vector<size_t> cuts;  // piece sizes for add_gather (the rest is the last piece)
};

std::vector<Sec> roundtrip_sections() {
  std::vector<Sec> s;
  s.push_back({SectionType::Inventory, 0, Bytes{}, {}});
  s.push_back({SectionType::ProcessTree, 1, Bytes{0x42}, {}});
  s.push_back({SectionType::ThreadRegs, 4242, random_bytes(216, 3), {}});
  s.push_back({SectionType::Mm, 7, mixed_bytes(4097, 4), {1, 4095}});
  s.push_back({SectionType::Pages, 7, mixed_bytes(64u << 20, 5), {1, 4095, (3u << 20) + 5, 0, 777}});
  s.push_back({SectionType::Files, UINT64_MAX, Bytes(5000, 0), {}});
  return s;
}

Result<void> write_sections(ImageWriter& w, const std::vector<Sec>& secs) {
  for (const Sec& s : secs) {
    std::vector<iovec> pieces;
    size_t off = 0;
    for (size_t c : s.cuts) {
      pieces.push_back({const_cast<uint8_t*>(s.data.data()) + off, c});
      off += c;
    }
    pieces.push_back({const_cast<uint8_t*>(s.data.data()) + off, s.data.size() - off});
    ENVRUN_CHECK(w.add_gather(s.type, s.id, pieces));
  }
  return w.finish();
}

void read_and_compare(int fd, const std::vector<Sec>& secs, bool zstd) {
  auto r = ImageReader::from_fd(fd, "rt.img");
  REQUIRE(r.ok());
  for (size_t i = 0; i < secs.size(); ++i) {
    auto h = r->next();
    REQUIRE(h.ok());
    REQUIRE(h->has_value());
    CHECK((*h)->type == static_cast<uint32_t>(secs[i].type));
    CHECK((*h)->id == secs[i].id);
    CHECK((*h)->index == i);
    CHECK((*h)->compressed() == zstd);
    REQUIRE((*h)->raw_size == secs[i].data.size());
    auto payload = r->read_payload();
    REQUIRE(payload.ok());
    CHECK(*payload == secs[i].data);
  }
  auto end = r->next();
  REQUIRE(end.ok());
  CHECK(!end->has_value());
  auto again = r->next();  // stays at the end
  REQUIRE(again.ok());
  CHECK(!again->has_value());
}

std::string verify_error(const Bytes& img, size_t len) {
  UniqueFd fd = memfile_with(img, len);
  auto s = verify_image(fd.get(), "small.img");
  return s.ok() ? std::string("<accepted>") : s.error().message;
}

// A small image, and where each of its parts starts: file header, then per section
// header start / payload start, then End.
struct Small {
  Bytes bytes;
  std::vector<uint64_t> header_at, payload_at;  // per section, End last
};

Small small_image(bool zstd) {
  UniqueFd fd = memfile();
  auto w = ImageWriter::to_fd(fd.get(), "small.img", {zstd, 3});
  REQUIRE(w.ok());
  Small s;
  auto add = [&](SectionType t, uint64_t id, const Bytes& b) {
    s.header_at.push_back(w->bytes_written());
    s.payload_at.push_back(w->bytes_written() + kSectionHeaderSize);
    REQUIRE(w->add(t, id, b).ok());
  };
  add(SectionType::Inventory, 0, Bytes{'{', '}'});
  add(SectionType::Pages, 7, mixed_bytes(300, 9));
  add(SectionType::FileData, 3, Bytes{});
  add(SectionType::ThreadRegs, 8, random_bytes(40, 10));
  s.header_at.push_back(w->bytes_written());
  s.payload_at.push_back(w->bytes_written() + kSectionHeaderSize);
  REQUIRE(w->finish().ok());
  s.bytes = slurp(fd.get());
  REQUIRE(s.bytes.size() == w->bytes_written());
  return s;
}

double mb_per_s(uint64_t bytes, std::chrono::steady_clock::duration d) {
  double s = std::chrono::duration<double>(d).count();
  return s > 0 ? bytes / s / 1e6 : 0;
}

}  // namespace

TEST_CASE("crc32c: RFC 3720 check values, both paths") {
  Bytes zeros(32, 0), ones(32, 0xff), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<uint8_t>(i), dec[i] = static_cast<uint8_t>(31 - i);
  // RFC 3720 B.4: an iSCSI SCSI Read (10) command PDU.
  Bytes pdu = {0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0x04, 0,
               0,    0,    0, 0x14, 0, 0, 0, 0x18, 0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0};
  std::string digits = "123456789";
  struct V {
    const void* p;
    size_t n;
    uint32_t crc;
  } vectors[] = {{zeros.data(), 32, 0x8A9136AA}, {ones.data(), 32, 0x62A8AB43},
                 {inc.data(), 32, 0x46DD794E},   {dec.data(), 32, 0x113FDB5C},
                 {pdu.data(), 48, 0xD9963A56},   {digits.data(), 9, 0xE3069283}};
  for (const V& v : vectors) {
    CHECK(crc32c(v.p, v.n) == v.crc);
    CHECK(crc32c_extend_portable(0, v.p, v.n) == v.crc);
  }
  CHECK(crc32c(nullptr, 0) == 0);
}

TEST_CASE("crc32c: hardware and table paths agree at every length and alignment") {
  Bytes data = random_bytes(3 * 8192 * 2 + 3 * 256 * 3 + 77, 1);
  for (size_t len : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{767}, size_t{768}, size_t{769},
                     size_t{24575}, size_t{24576}, size_t{24577}, size_t{49152 + 2304 + 60}})
    for (size_t align = 0; align < 8; ++align) {
      INFO("len " << len << " align " << align);
      CHECK(crc32c(data.data() + align, len) == crc32c_extend_portable(0, data.data() + align, len));
    }
  // extend(crc(A), B) == crc(A + B), split anywhere.
  uint32_t whole = crc32c(data.data(), data.size());
  for (size_t cut : {size_t{0}, size_t{5}, size_t{4096}, size_t{30000}, data.size()})
    CHECK(crc32c_extend(crc32c(data.data(), cut), data.data() + cut, data.size() - cut) == whole);
}

TEST_CASE("crc32c: throughput (printed)") {
  Bytes data = random_bytes(256u << 20, 2);
  auto t0 = std::chrono::steady_clock::now();
  uint32_t c = 0;
  for (int i = 0; i < 4; ++i) c ^= crc32c(data.data(), data.size());
  auto t1 = std::chrono::steady_clock::now();
  uint32_t p = crc32c_extend_portable(0, data.data(), 64u << 20);
  auto t2 = std::chrono::steady_clock::now();
  WARN("crc32c (" << (crc32c_hardware() ? "sse4.2, 3 streams" : "table") << "): "
                  << mb_per_s(4 * data.size(), t1 - t0) << " MB/s over 256 MiB; table path: "
                  << mb_per_s(64u << 20, t2 - t1) << " MB/s");
  CHECK(p == crc32c(data.data(), 64u << 20));
  CHECK(c == 0);  // four times the same value xor-ed
}

TEST_CASE("image: round trip through a file, plain and zstd") {
  bool zstd = GENERATE(false, true);
  INFO("zstd " << zstd);
  auto secs = roundtrip_sections();
  UniqueFd fd = memfile();
  auto w = ImageWriter::to_fd(fd.get(), "rt.img", {zstd, 1});
  REQUIRE(w.ok());
  auto written = write_sections(*w, secs);
  REQUIRE(written.ok());
  uint64_t raw = 0;
  for (const Sec& s : secs) raw += s.data.size();
  CHECK(w->raw_bytes() == raw);
  CHECK(w->sections() == secs.size());
  CHECK(w->bytes_written() == static_cast<uint64_t>(::lseek(fd.get(), 0, SEEK_END)));

  ::lseek(fd.get(), 0, SEEK_SET);
  read_and_compare(fd.get(), secs, zstd);

  ::lseek(fd.get(), 0, SEEK_SET);
  auto sum = verify_image(fd.get(), "rt.img");
  REQUIRE(sum.ok());
  CHECK(sum->end_present);
  CHECK(sum->sections == secs.size());
  CHECK(sum->raw_bytes == raw);
  CHECK(sum->total_bytes == w->bytes_written());
  CHECK(sum->of(SectionType::Pages).count == 1);
  CHECK(sum->of(SectionType::Pages).raw_bytes == (64u << 20));
  CHECK(sum->of(SectionType::Inventory).count == 1);
  CHECK(sum->of(SectionType::Pages).stored_bytes > 0);
  if (zstd) {
    CHECK(sum->stored_bytes < raw * 3 / 4);  // the text half compresses, the random half is kept raw
    CHECK(sum->stored_bytes > raw / 2);
  } else {
    CHECK(sum->stored_bytes == raw);
    CHECK(sum->total_bytes == kFileHeaderSize + (secs.size() + 1) * kSectionHeaderSize + raw + kEndPayloadSize);
  }
}

TEST_CASE("image: round trip through a pipe with a writer thread") {
  bool zstd = GENERATE(false, true);
  INFO("zstd " << zstd);
  auto secs = roundtrip_sections();
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  UniqueFd rd(p[0]), wr(p[1]);
  Result<void> wres = ok();
  std::thread writer([&] {
    auto w = ImageWriter::to_fd(wr.get(), "pipe", {zstd, 1});
    wres = w.ok() ? write_sections(*w, secs) : Result<void>(w.error());
    wr.reset();
  });
  read_and_compare(rd.get(), secs, zstd);
  writer.join();
  REQUIRE(wres.ok());
  // The reader took exactly the image: nothing is left in the pipe.
  uint8_t b;
  CHECK(::read(rd.get(), &b, 1) == 0);
}

TEST_CASE("image: verify_image over a pipe, payloads skipped and checked") {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  UniqueFd rd(p[0]), wr(p[1]);
  std::thread writer([&] {
    auto w = ImageWriter::to_fd(wr.get(), "pipe", {true, 1});
    if (w.ok()) (void)write_sections(*w, roundtrip_sections());
    wr.reset();
  });
  auto sum = verify_image(rd.get(), "pipe");
  writer.join();
  REQUIRE(sum.ok());
  CHECK(sum->sections == 6);
  CHECK(sum->of(SectionType::Files).raw_bytes == 5000);
}

TEST_CASE("image: next() skips payloads not read, still checking them") {
  Small s = small_image(false);
  Bytes bad = s.bytes;
  bad[s.payload_at[1] + 100] ^= 0x10;  // inside the pages payload
  UniqueFd fd = memfile_with(bad, bad.size());
  auto r = ImageReader::from_fd(fd.get(), "small.img");
  REQUIRE(r.ok());
  REQUIRE(r->next().ok());  // inventory, not read
  auto pages = r->next();
  REQUIRE(pages.ok());
  CHECK((*pages)->section_type() == SectionType::Pages);
  auto skipped_over = r->next();  // skips the damaged pages payload
  REQUIRE(!skipped_over.ok());
  CHECK_THAT(skipped_over.error().message,
             Catch::Contains("small.img: section 1 (pages, id 7) at offset") && Catch::Contains("payload checksum mismatch"));
  CHECK(!r->next().ok());  // the error is sticky
}

TEST_CASE("image: every truncation point is refused as truncated") {
  bool zstd = GENERATE(false, true);
  Small s = small_image(zstd);
  for (size_t len = 0; len < s.bytes.size(); ++len) {
    std::string msg = verify_error(s.bytes, len);
    INFO("zstd " << zstd << " length " << len << ": " << msg);
    CHECK_THAT(msg, Catch::StartsWith("small.img: truncated"));
    if (len == kFileHeaderSize)
      CHECK_THAT(msg, Catch::Contains("truncated after the file header at offset 32: no end section"));
    if (len == s.header_at.back())
      CHECK_THAT(msg, Catch::Contains("truncated after section 3 (thread-regs, id 8) at offset " + std::to_string(len) +
                                      ": no end section"));
    if (len == s.payload_at[1] + 10)
      CHECK_THAT(msg, Catch::Contains("truncated in section 1 (pages, id 7) at offset " + std::to_string(len)));
  }
  // A pipe that ends early reads the same way.
  for (size_t len : {size_t{0}, size_t{20}, s.payload_at[1] + 3, s.bytes.size() - 1}) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    UniqueFd rd(p[0]), wr(p[1]);
    REQUIRE(::write(wr.get(), s.bytes.data(), len) == static_cast<ssize_t>(len));
    wr.reset();
    auto sum = verify_image(rd.get(), "small.img");
    REQUIRE(!sum.ok());
    CHECK_THAT(sum.error().message, Catch::StartsWith("small.img: truncated"));
  }
}

TEST_CASE("image: every flipped bit is refused, and the message names the part") {
  bool zstd = GENERATE(false, true);
  Small s = small_image(zstd);
  size_t sections = s.header_at.size();  // End included
  for (size_t pos = 0; pos < s.bytes.size(); ++pos) {
    // Which part: the file header, or section k's header or payload.
    std::string expect;
    if (pos < kFileHeaderSize) {
      expect = pos < 8 ? "bad magic" : (pos < 10 ? "format version" : "file header");
    } else {
      size_t k = sections - 1;
      while (s.header_at[k] > pos) --k;
      bool in_header = pos < s.payload_at[k];
      std::string name = "small.img: section " + std::to_string(k);
      expect = in_header ? name + " at offset " + std::to_string(s.header_at[k]) + ": section header checksum"
                         : name + " (";
      if (!in_header && k == sections - 1) expect += "end, id 0)";
    }
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = s.bytes;
      bad[pos] ^= static_cast<uint8_t>(1u << bit);
      std::string msg = verify_error(bad, bad.size());
      INFO("zstd " << zstd << " byte " << pos << " bit " << bit << ": " << msg);
      CHECK_THAT(msg, Catch::Contains(expect));
      bool payload = pos >= kFileHeaderSize && msg.find("header checksum") == std::string::npos &&
                     msg.find("section header") == std::string::npos;
      if (payload) CHECK_THAT(msg, Catch::Contains("payload"));
    }
  }
}

TEST_CASE("image: a newer major version is refused, a newer minor accepted") {
  auto header = [](uint16_t major, uint16_t minor, uint32_t size) {
    Bytes h(size, 0);
    std::memcpy(h.data(), kImageMagic, 8);
    format::put16(&h[8], major);
    format::put16(&h[10], minor);
    format::put32(&h[12], size);
    format::put32(&h[size - 4], crc32c(h.data(), size - 4));
    return h;
  };
  Bytes v2 = header(2, 0, 32);
  CHECK(verify_error(v2, v2.size()) == "small.img: format version 2 is newer than this envrun (1)");

  // A 1.7 image with a 40-byte header, one section and its End, built by hand.
  Bytes img = header(1, 7, 40);
  Bytes payload = {1, 2, 3};
  SectionHeader h{static_cast<uint32_t>(SectionType::Mm), 0, 5, 3, 3, crc32c(payload.data(), 3), 0};
  auto hb = format::encode_section(h);
  img.insert(img.end(), hb.begin(), hb.end());
  img.insert(img.end(), payload.begin(), payload.end());
  auto eb = format::encode_end({1, img.size(), 3});
  SectionHeader e{static_cast<uint32_t>(SectionType::End), 0, 0, 24, 24, crc32c(eb.data(), 24), 1};
  auto ehb = format::encode_section(e);
  img.insert(img.end(), ehb.begin(), ehb.end());
  img.insert(img.end(), eb.begin(), eb.end());
  UniqueFd fd = memfile_with(img, img.size());
  auto sum = verify_image(fd.get(), "v17.img");
  REQUIRE(sum.ok());
  CHECK(sum->format_minor == 7);
  CHECK(sum->of(SectionType::Mm).count == 1);

  Bytes v0 = header(0, 0, 32);
  CHECK_THAT(verify_error(v0, v0.size()), Catch::Contains("format version 0 is not valid"));
  Bytes junk(64, 'x');
  CHECK_THAT(verify_error(junk, junk.size()), Catch::Contains("not an envrun checkpoint image"));
}

TEST_CASE("image: unknown sections: optional ones skipped, others refused") {
  UniqueFd fd = memfile();
  auto w = ImageWriter::to_fd(fd.get(), "u.img", {});
  REQUIRE(w.ok());
  Bytes a = {1, 2, 3}, future = random_bytes(1000, 11);
  REQUIRE(w->add(SectionType::Inventory, 0, a).ok());
  REQUIRE(w->add(static_cast<SectionType>(0x77), 9, future, kSectionOptional).ok());
  REQUIRE(w->add(SectionType::Files, 1, a).ok());
  REQUIRE(w->finish().ok());
  ::lseek(fd.get(), 0, SEEK_SET);
  auto r = ImageReader::from_fd(fd.get(), "u.img");
  REQUIRE(r.ok());
  auto h1 = r->next();
  REQUIRE(h1.ok());
  auto h2 = r->next();
  INFO((h2.ok() ? std::string() : h2.error().message));
  REQUIRE(h2.ok());
  auto h3 = r->next();
  REQUIRE(h3.ok());
  CHECK((*h1)->section_type() == SectionType::Inventory);
  REQUIRE(h2->has_value());
  CHECK((*h2)->section_type() == SectionType::Files);
  CHECK((*h2)->index == 2);
  CHECK(!h3->has_value());
  CHECK(r->skipped_optional() == 1);
  ::lseek(fd.get(), 0, SEEK_SET);
  auto sum = verify_image(fd.get(), "u.img");
  REQUIRE(sum.ok());
  CHECK(sum->sections == 3);
  CHECK(sum->by_type[0].count == 1);
  CHECK(sum->by_type[0].raw_bytes == 1000);

  UniqueFd fd2 = memfile();
  auto w2 = ImageWriter::to_fd(fd2.get(), "u.img", {});
  REQUIRE(w2.ok());
  REQUIRE(w2->add(static_cast<SectionType>(0x77), 9, future).ok());
  REQUIRE(w2->finish().ok());
  ::lseek(fd2.get(), 0, SEEK_SET);
  auto bad = verify_image(fd2.get(), "u.img");
  REQUIRE(!bad.ok());
  CHECK(bad.error().message ==
        "u.img: section 0 (type 0x00000077, id 9) at offset 32: unknown section type 0x00000077 "
        "that is not optional (written by a newer envrun?)");
}

TEST_CASE("image: lost, repeated and trailing data are refused") {
  Small s = small_image(false);
  // Section 2 (file-data, empty payload) removed: section 3 comes with index 3 at slot 2.
  Bytes lost(s.bytes.begin(), s.bytes.begin() + s.header_at[2]);
  lost.insert(lost.end(), s.bytes.begin() + s.header_at[3], s.bytes.end());
  CHECK_THAT(verify_error(lost, lost.size()), Catch::Contains("section header says index 3 (sections lost"));
  // Section 0 repeated.
  Bytes rep(s.bytes.begin(), s.bytes.begin() + s.header_at[1]);
  rep.insert(rep.end(), s.bytes.begin() + s.header_at[0], s.bytes.end());
  CHECK_THAT(verify_error(rep, rep.size()), Catch::Contains("section header says index 0"));
  // Bytes after the End section of a file.
  Bytes trailing = s.bytes;
  trailing.push_back(0);
  CHECK_THAT(verify_error(trailing, trailing.size()), Catch::Contains("data after the end section at offset " +
                                                                      std::to_string(s.bytes.size())));
  // An unfinished writer leaves no End section.
  Bytes unfinished(s.bytes.begin(), s.bytes.begin() + s.header_at.back());
  CHECK_THAT(verify_error(unfinished, unfinished.size()), Catch::Contains("no end section"));
}

TEST_CASE("image: a reader on a file stops right after its End (two images back to back)") {
  Small a = small_image(false), b = small_image(true);
  Bytes both = a.bytes;
  both.insert(both.end(), b.bytes.begin(), b.bytes.end());
  UniqueFd fd = memfile_with(both, both.size());
  auto first = ImageReader::from_fd(fd.get(), "a");
  REQUIRE(first.ok());
  int n = 0;
  for (auto h = first->next(); h.ok() && h->has_value(); h = first->next()) ++n;
  CHECK(n == 4);
  CHECK(::lseek(fd.get(), 0, SEEK_CUR) == static_cast<off_t>(a.bytes.size()));
  auto second = verify_image(fd.get(), "b");
  REQUIRE(second.ok());
  CHECK(second->total_bytes == b.bytes.size());
}

// A regular file is mapped when the reader opens it (image_io.hpp): bytes appended later
// are past the mapping and must still be read, from the grown file.
TEST_CASE("image: a file that grows after the reader opened it is read to its End") {
  Small a = small_image(false);
  size_t first = a.header_at[2];  // the file header, the inventory and the pages section
  UniqueFd fd = memfile_with(a.bytes, first);
  auto r = ImageReader::from_fd(fd.get(), "grows.img");
  REQUIRE(r.ok());
  REQUIRE(::pwrite(fd.get(), a.bytes.data() + first, a.bytes.size() - first, off_t(first)) ==
          static_cast<ssize_t>(a.bytes.size() - first));
  int n = 0;
  for (auto h = r->next(); h.ok() && h->has_value(); h = r->next()) ++n;
  CHECK(n == 4);
  CHECK(::lseek(fd.get(), 0, SEEK_CUR) == static_cast<off_t>(a.bytes.size()));
}

// Many one-page sections (an incremental round's scattered dirty pages): the headers come
// from the mapping and the payloads by pread; a file and a pipe must read the same.
TEST_CASE("image: thousands of small sections read the same from a file and a pipe") {
  UniqueFd fd = memfile();
  auto w = ImageWriter::to_fd(fd.get(), "many.img", {false, 1});
  REQUIRE(w.ok());
  std::vector<Bytes> payloads;
  for (int i = 0; i < 3000; ++i) {
    payloads.push_back(mixed_bytes(i % 5 == 0 ? 20000 : 8 + 4096, uint64_t(i)));
    REQUIRE(w->add(SectionType::Pages, uint64_t(i), payloads.back()).ok());
  }
  REQUIRE(w->finish().ok());
  Bytes all = slurp(fd.get());
  int p[2];
  REQUIRE(::pipe(p) == 0);
  UniqueFd pr(p[0]), pw(p[1]);
  std::thread feeder([&] {
    for (size_t off = 0; off < all.size();) {
      ssize_t k = ::write(pw.get(), all.data() + off, all.size() - off);
      if (k <= 0) break;
      off += size_t(k);
    }
    pw.reset();
  });
  ::lseek(fd.get(), 0, SEEK_SET);
  for (int from_pipe = 0; from_pipe < 2; ++from_pipe) {
    INFO("pipe " << from_pipe);
    auto r = ImageReader::from_fd(from_pipe ? pr.get() : fd.get(), "many.img");
    REQUIRE(r.ok());
    size_t i = 0;
    bool same = true;
    for (auto h = r->next(); h.ok() && h->has_value(); h = r->next(), ++i) {
      if (i % 3 == 1) continue;  // its payload skipped (sought over in the file)
      auto got = r->read_payload();
      REQUIRE(got.ok());
      same = same && i < payloads.size() && *got == payloads[i] && (*h)->id == i;
    }
    CHECK(same);
    CHECK(i == payloads.size());
  }
  feeder.join();
}

TEST_CASE("image: writer errors: broken pipe, misuse; reader misuse") {
  ::signal(SIGPIPE, SIG_IGN);
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  UniqueFd rd(p[0]), wr(p[1]);
  auto w = ImageWriter::to_fd(wr.get(), "peer", {});
  REQUIRE(w.ok());
  rd.reset();
  Bytes data(10000, 1);
  auto r = w->add(SectionType::Pages, 1, data);
  REQUIRE(!r.ok());
  CHECK(r.error().sys_errno == EPIPE);
  CHECK_THAT(r.error().message, Catch::StartsWith("peer: write section 0 (pages, id 1) at offset 32: "));
  auto again = w->add(SectionType::Pages, 2, data);
  REQUIRE(!again.ok());
  CHECK_THAT(again.error().message, Catch::Contains("an earlier write failed"));
  CHECK(!w->finish().ok());

  UniqueFd fd = memfile();
  auto w2 = ImageWriter::to_fd(fd.get(), "m.img", {});
  REQUIRE(w2.ok());
  CHECK(!w2->add(SectionType::End, 0, data).ok());
  CHECK(!w2->add(SectionType::Pages, 0, data, kSectionZstd).ok());
  CHECK(!ImageWriter::to_fd(fd.get(), "m.img", {true, 99}).ok());
  REQUIRE(w2->add(SectionType::Pages, 0, data).ok());
  REQUIRE(w2->finish().ok());
  CHECK(!w2->add(SectionType::Pages, 0, data).ok());
  ::lseek(fd.get(), 0, SEEK_SET);
  auto rd2 = ImageReader::from_fd(fd.get(), "m.img");
  REQUIRE(rd2.ok());
  CHECK(!rd2->read_payload().ok());  // no section yet
  REQUIRE(rd2->next().ok());
  Bytes small(10);
  auto wrong = rd2->read_payload(small);
  REQUIRE(!wrong.ok());
  CHECK_THAT(wrong.error().message, Catch::Contains("buffer of 10 bytes for a payload of 10000"));
  auto right = rd2->read_payload();
  REQUIRE(right.ok());
  CHECK(*right == data);
}

TEST_CASE("image: 1 GiB of pages through /dev/shm (throughput printed)") {
  const size_t size = 1u << 30, piece = 4u << 20;
  auto* src = static_cast<uint8_t*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  auto* dst = static_cast<uint8_t*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE((src != MAP_FAILED && dst != MAP_FAILED));
  for (size_t i = 0; i < size; i += 4096) std::memcpy(src + i, &i, sizeof i), src[i + 4000] = 0x5a;
  std::memset(dst, 0, size);  // fault the pages in outside the measured time
  std::string path = "/dev/shm/envrun-unit-ckpt-image-" + std::to_string(::getpid()) + ".img";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  ::unlink(path.c_str());
  std::vector<iovec> pieces;
  for (size_t off = 0; off < size; off += piece) pieces.push_back({src + off, piece});

  auto t0 = std::chrono::steady_clock::now();
  auto w = ImageWriter::to_fd(fd.get(), "shm.img", {});
  REQUIRE(w.ok());
  REQUIRE(w->add_gather(SectionType::Pages, 1, pieces).ok());
  REQUIRE(w->finish().ok());
  auto t1 = std::chrono::steady_clock::now();
  ::lseek(fd.get(), 0, SEEK_SET);
  auto r = ImageReader::from_fd(fd.get(), "shm.img");
  REQUIRE(r.ok());
  auto h = r->next();
  REQUIRE((h.ok() && h->has_value()));
  REQUIRE(r->read_payload({dst, size}).ok());
  REQUIRE(r->next().ok());
  auto t2 = std::chrono::steady_clock::now();
  CHECK(std::memcmp(src, dst, size) == 0);
  ::lseek(fd.get(), 0, SEEK_SET);
  auto t3 = std::chrono::steady_clock::now();
  auto sum = verify_image(fd.get(), "shm.img");
  auto t4 = std::chrono::steady_clock::now();
  REQUIRE(sum.ok());
  WARN("1 GiB plain: add_gather+finish " << mb_per_s(size, t1 - t0) << " MB/s, read_payload "
                                         << mb_per_s(size, t2 - t1) << " MB/s, verify_image "
                                         << mb_per_s(size, t4 - t3) << " MB/s");

  // zstd level 1 on the same (page-structured, mostly zero) memory, first 256 MiB.
  const size_t zsize = 256u << 20;
  UniqueFd zfd(::memfd_create("zimg", 0));
  auto t5 = std::chrono::steady_clock::now();
  auto zw = ImageWriter::to_fd(zfd.get(), "z.img", {true, 1});
  REQUIRE(zw.ok());
  REQUIRE(zw->add_gather(SectionType::Pages, 1, std::span(pieces).first(zsize / piece)).ok());
  REQUIRE(zw->finish().ok());
  auto t6 = std::chrono::steady_clock::now();
  ::lseek(zfd.get(), 0, SEEK_SET);
  auto zr = ImageReader::from_fd(zfd.get(), "z.img");
  REQUIRE(zr.ok());
  REQUIRE(zr->next().ok());
  REQUIRE(zr->read_payload({dst, zsize}).ok());
  auto t7 = std::chrono::steady_clock::now();
  CHECK(std::memcmp(src, dst, zsize) == 0);
  WARN("256 MiB zstd-1: write " << mb_per_s(zsize, t6 - t5) << " MB/s, read " << mb_per_s(zsize, t7 - t6)
                                << " MB/s, stored " << zw->bytes_written() << " bytes");
  ::munmap(src, size);
  ::munmap(dst, size);
}
