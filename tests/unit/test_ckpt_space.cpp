// Room for an image before the freeze (ckpt/image_space.hpp) and the writer cutting a
// regular file to its image at finish().
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ckpt/image.hpp"
#include "ckpt/image_space.hpp"
#include "kernel/fd.hpp"

using namespace envrun;
using namespace envrun::ckpt;

namespace {
off_t size_of(int fd) {
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  return st.st_size;
}
}  // namespace

TEST_CASE("image space: reserved ahead, cut to the image at finish(); the image reads back") {
  UniqueFd fd(::memfd_create("ckpt-space", 0));
  REQUIRE(fd);
  CHECK(reserve_image_space(fd.get(), 8u << 20) == (8u << 20));
  CHECK(size_of(fd.get()) == (8 << 20));
  auto w = ImageWriter::to_fd(fd.get(), "space.img");
  REQUIRE(w.ok());
  std::vector<uint8_t> pages(3 * 4096, 0x5a);
  REQUIRE(w->add(SectionType::Pages, 1, pages).ok());
  REQUIRE(w->finish().ok());
  CHECK(size_of(fd.get()) == off_t(w->bytes_written()));
  ::lseek(fd.get(), 0, SEEK_SET);
  auto v = verify_image(fd.get(), "space.img");
  REQUIRE(v.ok());
  CHECK(v->raw_bytes == pages.size());
}

TEST_CASE("image space: an image after other bytes keeps them; an older tail is dropped") {
  UniqueFd fd(::memfd_create("ckpt-space2", 0));
  std::vector<uint8_t> old(100000, 7);
  REQUIRE(::write(fd.get(), old.data(), old.size()) == ssize_t(old.size()));
  ::lseek(fd.get(), 1000, SEEK_SET);  // the image goes at 1000, over the older bytes
  auto w = ImageWriter::to_fd(fd.get(), "mid.img");
  REQUIRE(w.ok());
  REQUIRE(w->add(SectionType::Inventory, 0, std::vector<uint8_t>{'{', '}'}).ok());
  REQUIRE(w->finish().ok());
  CHECK(size_of(fd.get()) == off_t(1000 + w->bytes_written()));
  uint8_t first[1000];
  REQUIRE(::pread(fd.get(), first, sizeof first, 0) == ssize_t(sizeof first));
  CHECK(std::all_of(first, first + sizeof first, [](uint8_t b) { return b == 7; }));
  ::lseek(fd.get(), 1000, SEEK_SET);
  CHECK(verify_image(fd.get(), "mid.img").ok());  // no "data after the end section"
}

TEST_CASE("image space: nothing reserved on a pipe; the estimate sees this process's memory") {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  UniqueFd rd(p[0]), wr(p[1]);
  CHECK(reserve_image_space(wr.get(), 1u << 20) == 0);
  CHECK(reserve_image_space(wr.get(), 0) == 0);
  size_t big = 64u << 20;
  auto* m = static_cast<uint8_t*>(::mmap(nullptr, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(m != MAP_FAILED);
  uint64_t before = estimate_image_bytes(::getpid());
  std::memset(m, 1, big);
  uint64_t after = estimate_image_bytes(::getpid());
  ::munmap(m, big);
  CHECK(after >= before + big);  // the 64 MiB just touched are counted
  CHECK(estimate_image_bytes(999999999) == 0);
}
