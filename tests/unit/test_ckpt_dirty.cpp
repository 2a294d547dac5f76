// Dirty-page tracking (ckpt/dirty_track.hpp) against a real forked child: the tracker
// is injected into it, the child writes pages the test names, and each round's scan
// must report exactly those pages (and protect them again for the next round).
// Plus the range-set helpers (ckpt/page_ranges.hpp) the incremental images use.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ckpt/dirty_track.hpp"
#include "ckpt/infect/infect.hpp"
#include "ckpt/proc_read.hpp"

using namespace envrun;
using namespace envrun::ckpt;

namespace Catch {
template <>
struct StringMaker<PageRange> {
  static std::string convert(const PageRange& r) {
    char b[64];
    std::snprintf(b, sizeof b, "[%#llx, %#llx)", (unsigned long long)r.start, (unsigned long long)r.end);
    return b;
  }
};
}  // namespace Catch

namespace {

constexpr uint64_t P = 4096;
constexpr size_t kPages = 64;

// Commands to the child: one byte op + one byte page index; the child answers one byte.
enum Op : uint8_t { kWrite = 'w', kDrop = 'd', kQuit = 'q' };

struct Child {
  pid_t pid = -1;
  int cmd = -1, ack = -1;
  Child(uint8_t* region, uint8_t* other) {
    int c[2], a[2];
    REQUIRE(::pipe(c) == 0);
    REQUIRE(::pipe(a) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(c[1]), ::close(a[0]);
      for (size_t i = 0; i < kPages / 2; ++i) region[i * P] = 1;  // the first half present
      other[0] = 1;
      uint8_t m[2];
      char ok = 'k';
      if (::write(a[1], &ok, 1) != 1) ::_exit(1);
      while (::read(c[0], m, 2) == 2 && m[0] != kQuit) {
        if (m[0] == kWrite) reinterpret_cast<volatile uint8_t*>(region)[m[1] * P + 17] = m[1];
        if (m[0] == kDrop) ::madvise(region + m[1] * P, P, MADV_DONTNEED);
        if (::write(a[1], &ok, 1) != 1) break;
      }
      ::_exit(0);
    }
    ::close(c[0]), ::close(a[1]);
    cmd = c[1], ack = a[0];
    REQUIRE(wait_ack());
  }
  bool wait_ack() {
    struct pollfd p = {ack, POLLIN, 0};
    char b;
    return ::poll(&p, 1, 5000) == 1 && ::read(ack, &b, 1) == 1;
  }
  void send(Op op, size_t page) {
    uint8_t m[2] = {op, uint8_t(page)};
    REQUIRE(::write(cmd, m, 2) == 2);
    REQUIRE(wait_ack());
  }
  ~Child() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(cmd), ::close(ack);
  }
};

// Runs body with the child's (single) thread seized and a Remote open in it.
template <class F>
void inside(pid_t pid, F&& body) {
  REQUIRE(infect::seize(pid));
  REQUIRE(infect::interrupt(pid));
  {
    auto r = infect::Remote::open(pid);
    REQUIRE(r);
    body(*r);
    REQUIRE(r->close());
  }
  REQUIRE(infect::detach(pid));
}

PageRanges pages(uint8_t* base, std::initializer_list<std::pair<size_t, size_t>> runs) {
  PageRanges out;
  for (auto [from, to] : runs) out.push_back({uint64_t(base) + from * P, uint64_t(base) + to * P});
  return out;
}

std::vector<int> tracker_fds(pid_t pid) {
  std::vector<int> out;
  auto fds = proc::read_fds(pid);
  REQUIRE(fds);
  for (const auto& f : *fds)
    if (is_tracker_fd(f)) out.push_back(f.fd);
  return out;
}

struct Region {
  uint8_t* p;
  size_t n;
  explicit Region(size_t pages) : n(pages) {
    p = static_cast<uint8_t*>(::mmap(nullptr, n * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(p != MAP_FAILED);
  }
  ~Region() { ::munmap(p, n * P); }
  PageRange range() const { return {uint64_t(p), uint64_t(p) + n * P}; }
};

}  // namespace

TEST_CASE("dirty tracking: exactly the written pages, round after round", "[ckpt][dirty]") {
  Region region(kPages), other(4);
  Child child(region.p, other.p);
  std::optional<DirtyTracker> t;
  inside(child.pid, [&](infect::Remote& r) {
    auto made = DirtyTracker::create(r, child.pid);
    REQUIRE(made);
    t = std::move(*made);
    REQUIRE(t->protect(region.range()));
  });
  UniqueFd pm(::open(("/proc/" + std::to_string(child.pid) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(pm);

  // Round 1: present pages (3, 10, 11) and never-populated ones (40, 63) written.
  for (size_t p : {3, 10, 11, 40, 63}) child.send(kWrite, p);
  auto s1 = scan_dirty(pm.get(), region.range());
  REQUIRE(s1);
  REQUIRE(s1->has_value());
  CHECK((*s1)->written == pages(region.p, {{3, 4}, {10, 12}, {40, 41}, {63, 64}}));
  CHECK((*s1)->absent.empty());

  // Round 2: the scan protected them again; only the new writes show. A page dropped
  // with MADV_DONTNEED is absent (reads as zero), not "unchanged" (the kernel may report
  // it as written too).
  for (size_t p : {11, 12, 33}) child.send(kWrite, p);
  child.send(kDrop, 5);
  auto s2 = scan_dirty(pm.get(), region.range());
  REQUIRE(s2);
  REQUIRE(s2->has_value());
  CHECK(subtract((*s2)->written, (*s2)->absent) == pages(region.p, {{11, 13}, {33, 34}}));
  CHECK((*s2)->absent == pages(region.p, {{5, 6}}));

  // Round 3: nothing written.
  auto s3 = scan_dirty(pm.get(), region.range());
  REQUIRE(s3);
  REQUIRE(s3->has_value());
  CHECK((*s3)->written.empty());

  // A mapping that was never registered is not tracked: no conclusion.
  auto s4 = scan_dirty(pm.get(), other.range());
  REQUIRE(s4);
  CHECK(!s4->has_value());
}

TEST_CASE("dirty tracking: the tracker fd is recognised, adopted, renumbered", "[ckpt][dirty]") {
  Region region(kPages), other(4);
  Child child(region.p, other.p);
  CHECK(tracker_fds(child.pid).empty());
  std::optional<DirtyTracker> t;
  inside(child.pid, [&](infect::Remote& r) {
    auto made = DirtyTracker::create(r, child.pid);
    REQUIRE(made);
    t = std::move(*made);
    REQUIRE(t->protect(region.range()));
  });
  int first = t->target_fd();
  CHECK(first >= 3);
  CHECK(tracker_fds(child.pid) == std::vector<int>{first});

  CHECK(DirtyTracker::adopt(child.pid, first, t->ino()));
  auto wrong = DirtyTracker::adopt(child.pid, first, t->ino() + 1);
  REQUIRE(!wrong);
  CHECK(wrong.error().kind == ErrorKind::NotFound);
  CHECK(!DirtyTracker::adopt(child.pid, 0, t->ino()));  // stdin is no userfaultfd

  inside(child.pid, [&](infect::Remote& r) { REQUIRE(t->renumber(r)); });
  CHECK(t->target_fd() != first);
  CHECK(tracker_fds(child.pid) == std::vector<int>{t->target_fd()});
  CHECK(!DirtyTracker::adopt(child.pid, first, t->ino()));
  CHECK(DirtyTracker::adopt(child.pid, t->target_fd(), t->ino()));

  // Registration lives on under the new number: a write is still seen.
  child.send(kWrite, 20);
  UniqueFd pm(::open(("/proc/" + std::to_string(child.pid) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  auto s = scan_dirty(pm.get(), region.range());
  REQUIRE(s);
  REQUIRE(s->has_value());
  CHECK((*s)->written == pages(region.p, {{20, 21}}));

  // Closed in the target: the registration goes with it, the range is untracked.
  inside(child.pid, [&](infect::Remote& r) { REQUIRE(t->close_in_target(r)); });
  CHECK(tracker_fds(child.pid).empty());
  auto gone = scan_dirty(pm.get(), region.range());
  REQUIRE(gone);
  CHECK(!gone->has_value());
}

TEST_CASE("page ranges: normal form, intersection, difference, encoding", "[ckpt][dirty]") {
  auto r = [](uint64_t a, uint64_t b) { return PageRange{a * P, b * P}; };
  CHECK(normalized({r(5, 6), r(1, 3), r(2, 4), r(4, 5), r(9, 9)}) == PageRanges{r(1, 6)});
  CHECK(intersect({r(0, 10), r(20, 30)}, {r(5, 25)}) == PageRanges{r(5, 10), r(20, 25)});
  CHECK(intersect({r(0, 10)}, {r(10, 20)}).empty());
  CHECK(subtract({r(0, 10), r(20, 30)}, {r(2, 3), r(5, 22), r(29, 40)}) ==
        PageRanges{r(0, 2), r(3, 5), r(22, 29)});
  CHECK(subtract({r(0, 4)}, {}) == PageRanges{r(0, 4)});
  CHECK(page_count({r(0, 4), r(10, 11)}) == 5);

  PageRanges in{r(1, 3), r(100, 164)};
  auto bytes = encode_ranges(in);
  CHECK(bytes.size() == 32);
  auto back = decode_ranges(bytes, "parent-pages");
  REQUIRE(back);
  CHECK(*back == in);
  auto cut = decode_ranges(std::span<const uint8_t>(bytes.data(), 20), "parent-pages");
  REQUIRE(!cut);
  CHECK(cut.error().message.find("parent-pages: 20 bytes") != std::string::npos);
  bytes[0] = 1;  // start address no longer page-aligned
  CHECK(!decode_ranges(bytes, "parent-pages"));
}
