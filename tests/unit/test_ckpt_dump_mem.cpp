// MemDumper (ckpt/dump_mem.hpp) against a real forked child: a live read (a tracked
// pre-copy round reads memory while the tree runs) leaves out pages unmapped meanwhile
// and counts them; a read of a stopped tree fails on them instead.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ckpt/dump_mem.hpp"
#include "ckpt/image.hpp"
#include "kernel/fd.hpp"

using namespace envrun;
using namespace envrun::ckpt;

namespace {

constexpr uint64_t P = 4096;

// A child with 8 pages of non-zero bytes, pages 4..7 unmapped again; reports the address.
struct Child {
  pid_t pid = -1;
  uint64_t base = 0;
  Child() {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto* m = static_cast<uint8_t*>(::mmap(nullptr, 8 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      if (m == MAP_FAILED) ::_exit(1);
      std::memset(m, 0x5a, 8 * P);
      ::munmap(m + 4 * P, 4 * P);
      uint64_t a = reinterpret_cast<uint64_t>(m);
      if (::write(p[1], &a, sizeof a) != sizeof a) ::_exit(1);
      ::pause();
      ::_exit(0);
    }
    ::close(p[1]);
    REQUIRE(::read(p[0], &base, sizeof base) == sizeof base);
    ::close(p[0]);
  }
  ~Child() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

Result<DumpStats> dump_range(pid_t pid, uint64_t start, uint64_t pages, bool live) {
  char path[] = "/tmp/unit_ckpt_dump_mem.XXXXXX";
  UniqueFd fd(::mkstemp(path));
  ::unlink(path);
  if (!fd) return Error::sys("mkstemp");
  auto w = ENVRUN_TRY(ImageWriter::to_fd(fd.get(), "test image"));
  DumpStats st;
  MemDumper mem{w, st};
  mem.live = live;
  ENVRUN_CHECK(mem.dump_pages(pid, 1, PageRanges{{start, start + pages * P}}));
  ENVRUN_CHECK(w.finish());
  return st;
}

}  // namespace

TEST_CASE("dump_mem: a live read leaves out pages unmapped meanwhile and counts them") {
  Child c;
  auto st = dump_range(c.pid, c.base, 8, true);
  REQUIRE(st.ok());
  CHECK(st->pages_written == 4);
  CHECK(st->pages_vanished == 4);
}

TEST_CASE("dump_mem: a read of a stopped tree fails on an unmapped page") {
  Child c;
  auto st = dump_range(c.pid, c.base, 8, false);
  REQUIRE_FALSE(st.ok());
}

TEST_CASE("dump_mem: a live read of mapped pages vanishes nothing") {
  Child c;
  auto st = dump_range(c.pid, c.base, 4, true);
  REQUIRE(st.ok());
  CHECK(st->pages_written == 4);
  CHECK(st->pages_vanished == 0);
}
