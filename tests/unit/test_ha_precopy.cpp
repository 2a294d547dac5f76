// Pre-copy stop rules and the downtime prediction (ha/precopy.hpp), and the parsing of
// `envrun checkpoint --stats`.
#include <catch2/catch.hpp>

#include "ha/precopy.hpp"

using namespace envrun::ha;

namespace {

// A round of `pages` pages whose image took `ms` to make and store, at 1 GB/s plus 20 ms.
RoundRecord round_of(uint32_t k, uint64_t pages) {
  RoundRecord r;
  r.round = k;
  r.kind = k ? "pages" : "full";
  r.pages = pages;
  r.image_bytes = pages * 4096 + 1000;
  r.wall_us = 20000 + r.image_bytes / 1000;
  return r;
}

PrecopyOptions opts() {
  PrecopyOptions o;
  o.max_downtime_us = 100000;
  o.restore_bytes_per_s = 0;  // no restore term unless a test sets one
  o.restore_fixed_us = 0;
  return o;
}

}  // namespace

TEST_CASE("precopy: the prediction fits fixed cost and throughput through round 0 and the latest") {
  std::vector<RoundRecord> d{round_of(0, 262144), round_of(1, 10000)};
  auto p = predict_final(d, opts());
  CHECK(p.fixed_us == Approx(20000).margin(50));
  CHECK(p.transfer_us == Approx(d[1].image_bytes / 1000.0).margin(50));
  PrecopyOptions o = opts();
  o.restore_bytes_per_s = 1000000000, o.restore_fixed_us = 5000;
  auto q = predict_final(d, o);  // the chain: rounds 0, 1 and a final like round 1
  CHECK(q.restore_us == Approx(5000 + (d[0].image_bytes + 2 * d[1].image_bytes) / 1000.0).margin(50));
  CHECK(q.downtime_us() == q.fixed_us + q.transfer_us + q.restore_us);
}

TEST_CASE("precopy: round 0 alone never stops pre-copy, unless it is the cap") {
  std::vector<RoundRecord> d{round_of(0, 100)};
  CHECK(next_step(d, opts()) == StopRule::None);
  PrecopyOptions o = opts();
  o.max_rounds = 1;
  CHECK(next_step(d, o) == StopRule::MaxRounds);
  o.enabled = false;
  CHECK(next_step(d, o) == StopRule::Disabled);
}

TEST_CASE("precopy: few pages, the budget, no progress, the cap") {
  PrecopyOptions o = opts();
  CHECK(next_step({round_of(0, 262144), round_of(1, 10)}, o) == StopRule::FewPages);
  // 20 ms fixed + 40 MB at 1 GB/s = 60 ms: fits 100 ms
  CHECK(next_step({round_of(0, 262144), round_of(1, 10000)}, o) == StopRule::Budget);
  o.max_downtime_us = 30000;  // now it does not fit; 10000 -> 9500 pages is < 10% progress
  CHECK(next_step({round_of(0, 262144), round_of(1, 10000)}, o) == StopRule::None);
  CHECK(next_step({round_of(0, 262144), round_of(1, 10000), round_of(2, 9500)}, o) == StopRule::NoProgress);
  CHECK(next_step({round_of(0, 262144), round_of(1, 10000), round_of(2, 8000)}, o) == StopRule::None);
  o.max_rounds = 3;
  CHECK(next_step({round_of(0, 262144), round_of(1, 10000), round_of(2, 8000)}, o) == StopRule::MaxRounds);
}

TEST_CASE("precopy: the budget counts the restore on the target") {
  PrecopyOptions o = opts();
  std::vector<RoundRecord> d{round_of(0, 262144), round_of(1, 10000)};
  CHECK(next_step(d, o) == StopRule::Budget);
  o.restore_bytes_per_s = 2000000000;  // 1.1 GB of chain at 2 GB/s: ~560 ms more
  CHECK(next_step(d, o) == StopRule::None);
  // A lazy restore reads the final image only (as large as round 1) before the app runs.
  o.lazy_restore = true;
  o.lazy_restore_fixed_us = 5000;
  auto lazy = predict_final(d, o);
  CHECK(lazy.restore_us == 5000 + d[1].image_bytes * 1000000 / 2000000000);
  CHECK(next_step(d, o) == StopRule::Budget);
  o.lazy_restore_fixed_us = 200000;  // a slow target: no longer fits
  CHECK(next_step(d, o) == StopRule::None);
}

TEST_CASE("precopy: stop rule names") {
  CHECK(std::string(stop_rule_name(StopRule::FewPages)) == "few-pages");
  CHECK(std::string(stop_rule_name(StopRule::Budget)) == "budget");
  CHECK(std::string(stop_rule_name(StopRule::NoProgress)) == "no-progress");
  CHECK(std::string(stop_rule_name(StopRule::MaxRounds)) == "max-rounds");
  CHECK(std::string(stop_rule_name(StopRule::Disabled)) == "disabled");
}

TEST_CASE("precopy: envrun checkpoint --stats parsed") {
  auto s = parse_dump_stats(
      "Dump statistics\n  freezing time:               812 us\n  frozen time:             41234 us\n"
      "  memory dump time:          100 us\n  pages written:            2048\n  image bytes:          8400000\n"
      "  pages in parent:        260096\n");
  CHECK(s.freezing_us == 812);
  CHECK(s.frozen_us == 41234);
  CHECK(s.pages_written == 2048);
  CHECK(s.image_bytes == 8400000);
  CHECK(s.pages_in_parent == 260096);
  auto none = parse_dump_stats("");
  CHECK(none.frozen_us == 0);
  CHECK(none.pages_written == 0);
}
