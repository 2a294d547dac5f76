// SlotPipeline (ckpt/slot_pipeline.hpp): jobs consumed in order on another thread, a
// bounded ring, the consumer's first error returned and nothing consumed after it.
#include <catch2/catch.hpp>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "ckpt/slot_pipeline.hpp"

using namespace envrun;
using namespace envrun::ckpt;

namespace {
struct Job {
  int value = -1;
  int serial = 0;  // which of the ring's jobs
};
}  // namespace

TEST_CASE("SlotPipeline: every job consumed once, in submission order, on another thread") {
  std::vector<int> seen;
  std::set<int> serials;
  std::thread::id consumer_thread;
  int made = 0;
  SlotPipeline<Job> p(
      3, [&] { return Job{-1, made++}; },
      [&](Job& j) -> Result<void> {
        consumer_thread = std::this_thread::get_id();
        seen.push_back(j.value);
        serials.insert(j.serial);
        return ok();
      });
  for (int i = 0; i < 1000; ++i) {
    auto j = p.acquire();
    REQUIRE(j.ok());
    (*j)->value = i;
    p.submit(*j);
  }
  REQUIRE(p.finish().ok());
  REQUIRE(seen.size() == 1000);
  for (int i = 0; i < 1000; ++i) CHECK(seen[i] == i);
  CHECK(made == 3);
  CHECK(serials.size() == 3);  // the ring is reused
  CHECK(consumer_thread != std::this_thread::get_id());
}

TEST_CASE("SlotPipeline: the consumer's first error stops it and comes back to the producer") {
  std::atomic<int> consumed{0};
  SlotPipeline<Job> p(
      2, [] { return Job{}; },
      [&](Job& j) -> Result<void> {
        ++consumed;
        if (j.value == 5) return Error::make(ErrorKind::System, "write: disk full at job 5");
        if (j.value > 5) return Error::make(ErrorKind::System, "consumed after the error");
        return ok();
      });
  Result<void> seen_err = ok();
  for (int i = 0; i < 100; ++i) {
    auto j = p.acquire();
    if (!j) {
      seen_err = Error(j.error());
      break;
    }
    (*j)->value = i;
    p.submit(*j);
  }
  REQUIRE(!seen_err.ok());  // acquire stops handing out jobs (at most depth + 1 later)
  CHECK(seen_err.error().message == "write: disk full at job 5");
  auto f = p.finish();
  REQUIRE(!f.ok());
  CHECK(f.error().message == "write: disk full at job 5");
  CHECK(consumed == 6);  // jobs 0..5; none after the error
}

TEST_CASE("SlotPipeline: a released job is not consumed; finish with nothing queued") {
  int consumed = 0;
  SlotPipeline<Job> p(1, [] { return Job{}; }, [&](Job&) -> Result<void> { return ++consumed, ok(); });
  auto j = p.acquire();
  REQUIRE(j.ok());
  p.release(*j);
  auto again = p.acquire();  // the one job is free again (would block otherwise)
  REQUIRE(again.ok());
  p.release(*again);
  CHECK(p.finish().ok());
  CHECK(consumed == 0);
}
