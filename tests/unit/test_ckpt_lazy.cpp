// Lazy restore: the page server's bookkeeping (LazyExtents) and the disk page source.
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "ckpt/crc32c.hpp"
#include "ckpt/image.hpp"
#include "ckpt/lazy_extents.hpp"
#include "ckpt/lazy_source.hpp"

using namespace envrun::ckpt;

namespace {
constexpr uint64_t P = 4096;
}

TEST_CASE("LazyExtents: source, remove, split", "[ckpt][lazy]") {
  LazyExtents e;
  e.add(10 * P, 20 * P, {7, 10 * P});
  CHECK(e.pages() == 10);
  REQUIRE(e.source(15 * P));
  CHECK(e.source(15 * P)->pid == 7);
  CHECK(e.source(15 * P)->addr == 15 * P);
  CHECK_FALSE(e.source(20 * P));
  CHECK_FALSE(e.source(9 * P));
  e.remove(12 * P, 14 * P);  // a hole in the middle
  CHECK(e.pages() == 8);
  CHECK_FALSE(e.source(12 * P));
  CHECK_FALSE(e.source(13 * P));
  REQUIRE(e.source(14 * P));
  CHECK(e.source(14 * P)->addr == 14 * P);
  e.remove(0, 100 * P);
  CHECK(e.empty());
}

TEST_CASE("LazyExtents: adjacent runs of one source join, others stay apart", "[ckpt][lazy]") {
  LazyExtents e;
  e.add(0, 4 * P, {1, 0});
  e.add(4 * P, 8 * P, {1, 4 * P});
  e.add(8 * P, 9 * P, {2, 8 * P});
  CHECK(e.pages() == 9);
  auto w = e.wanted(1, 0, 8 * P);
  REQUIRE(w.size() == 1);
  CHECK(w[0].addr == 0);
  CHECK(w[0].bytes == 8 * P);
  CHECK(e.wanted(2, 0, 16 * P).size() == 1);
  CHECK(e.wanted(3, 0, 16 * P).empty());
}

TEST_CASE("LazyExtents: wanted gives the parts still to come, by offset into the chunk", "[ckpt][lazy]") {
  LazyExtents e;
  e.add(100 * P, 110 * P, {5, 100 * P});
  e.remove(102 * P, 104 * P);
  auto w = e.wanted(5, 101 * P, 5 * P);  // chunk [101, 106)
  REQUIRE(w.size() == 2);
  CHECK(w[0].addr == 101 * P);
  CHECK(w[0].src_off == 0);
  CHECK(w[0].bytes == P);
  CHECK(w[1].addr == 104 * P);
  CHECK(w[1].src_off == 3 * P);
  CHECK(w[1].bytes == 2 * P);
}

TEST_CASE("LazyExtents: mremap moves what is wanted and keeps the source address", "[ckpt][lazy]") {
  LazyExtents e;
  e.add(10 * P, 20 * P, {3, 10 * P});
  e.add(50 * P, 52 * P, {3, 50 * P});  // overwritten by the move (MREMAP_FIXED)
  e.remap(15 * P, 50 * P, 5 * P);
  CHECK(e.pages() == 10);
  CHECK_FALSE(e.source(15 * P));
  REQUIRE(e.source(50 * P));
  CHECK(e.source(50 * P)->addr == 15 * P);
  CHECK(e.source(54 * P)->addr == 19 * P);
  CHECK_FALSE(e.source(55 * P));
  auto w = e.wanted(3, 16 * P, P);
  REQUIRE(w.size() == 1);
  CHECK(w[0].addr == 51 * P);
  // a forked child's copy is independent
  LazyExtents child = e;
  child.remove(0, 100 * P);
  CHECK(child.empty());
  CHECK(e.pages() == 10);
}

namespace {

struct TempImage {
  std::string path;
  std::vector<std::pair<uint64_t, uint64_t>> sections;  // header offset, raw size
  TempImage() {
    char tmpl[] = "/tmp/unit_ckpt_lazy_XXXXXX";
    int fd = ::mkstemp(tmpl);
    path = tmpl;
    auto w = ImageWriter::to_fd(fd, path);
    REQUIRE(w);
    for (uint64_t s = 0; s < 3; ++s) {  // 3 sections of 4 pages, pid 9, at 1000P, 2000P, 3000P
      uint64_t addr = (s + 1) * 1000 * P;
      std::vector<uint8_t> payload(8 + 4 * P);
      std::memcpy(payload.data(), &addr, 8);
      for (size_t i = 8; i < payload.size(); ++i) payload[i] = uint8_t(s * 31 + (i - 8) / P);
      uint64_t before = w->bytes_written();
      REQUIRE(w->add(SectionType::Pages, 9, payload));
      sections.push_back({before, payload.size()});
    }
    REQUIRE(w->finish());
    ::close(fd);
  }
  ~TempImage() { ::unlink(path.c_str()); }
  PageLoc loc(uint32_t file, size_t s) const {
    std::vector<uint8_t> payload(sections[s].second);
    int fd = ::open(path.c_str(), O_RDONLY);
    REQUIRE(::pread(fd, payload.data(), payload.size(), off_t(sections[s].first + kSectionHeaderSize)) ==
            ssize_t(payload.size()));
    ::close(fd);
    PageLoc l;
    l.pid = 9, l.file = file, l.payload_off = sections[s].first + kSectionHeaderSize, l.raw_size = payload.size();
    l.crc = crc32c(payload.data(), payload.size());
    l.index = uint32_t(s), l.sec_addr = (s + 1) * 1000 * P, l.start = l.sec_addr, l.end = l.sec_addr + 4 * P;
    return l;
  }
};

}  // namespace

TEST_CASE("DiskPageSource: asked-for chunks first, then each other once, checked", "[ckpt][lazy]") {
  TempImage img;
  DiskPageSource src;
  auto f = src.add_file(img.path);
  REQUIRE(f);
  for (size_t s = 0; s < 3; ++s) src.add(img.loc(*f, s));
  src.seal();
  CHECK(src.pages() == 12);
  REQUIRE(src.request(9, 3000 * P + 2 * P));
  auto c = src.next();
  REQUIRE(c);
  REQUIRE(*c);
  CHECK((*c)->addr == 3000 * P);
  CHECK((*c)->data.size() == 4 * P);
  CHECK((*c)->data[2 * P] == uint8_t(2 * 31 + 2));
  std::vector<uint64_t> rest;
  while (true) {
    auto n = src.next();
    REQUIRE(n);
    if (!*n) break;
    rest.push_back((*n)->addr);
  }
  CHECK(rest == std::vector<uint64_t>{1000 * P, 2000 * P});  // the asked one not twice
  CHECK(src.done());
  CHECK_FALSE(src.request(9, 5 * P));  // no image holds it
  CHECK_FALSE(src.request(8, 1000 * P));
}

TEST_CASE("DiskPageSource: a parent's location gives only the pages needed", "[ckpt][lazy]") {
  TempImage img;
  DiskPageSource src;
  auto f = src.add_file(img.path);
  REQUIRE(f);
  auto l = img.loc(*f, 1);
  l.start += P, l.end -= P;
  src.add(l);
  src.seal();
  auto c = src.next();
  REQUIRE(c);
  REQUIRE(*c);
  CHECK((*c)->addr == 2001 * P);
  CHECK((*c)->data.size() == 2 * P);
  CHECK((*c)->data[0] == uint8_t(31 + 1));
}

TEST_CASE("DiskPageSource: a damaged payload is an error, never pages", "[ckpt][lazy]") {
  TempImage img;
  auto l0 = PageLoc{};
  {
    DiskPageSource probe;
    l0 = img.loc(*probe.add_file(img.path), 0);
  }
  int fd = ::open(img.path.c_str(), O_RDWR);
  uint8_t b;
  off_t at = off_t(img.sections[0].first + kSectionHeaderSize + 8 + 3 * P + 17);
  REQUIRE(::pread(fd, &b, 1, at) == 1);
  b ^= 0xff;
  REQUIRE(::pwrite(fd, &b, 1, at) == 1);
  ::close(fd);
  DiskPageSource src;
  src.add(l0);
  REQUIRE(src.add_file(img.path));
  src.seal();
  auto c = src.next();
  REQUIRE_FALSE(c);
  CHECK_THAT(c.error().message, Catch::Contains("checksum mismatch"));
  CHECK_THAT(c.error().message, Catch::Contains("section 0"));
}
