// The collector's arithmetic on synthetic readings: deltas, the memory trapezoid, interval
// peaks against since-start high-water marks, counters going backwards, the cursor.
// Numbers are chosen to be exact in binary floating point, so rows compare with ==.
#include <catch2/catch.hpp>

#include "billing/collector.hpp"

using namespace envrun;
using namespace envrun::billing;

namespace {

// A reading at realtime `ms` whose monotonic clock is `ms` shifted by a fixed boot offset.
Reading at(int64_t ms) {
  Reading r;
  r.realtime_ms = ms;
  r.monotonic_ns = (ms - 500) * 1'000'000;
  return r;
}

std::optional<double> row(const IntervalBatch& b, Metric m) {
  for (const auto& r : b.rows)
    if (r.metric == m) return r.quantity;
  return std::nullopt;
}

InstanceInfo web1() { return InstanceInfo{"web1", "web", {{"team", "a"}}}; }

}  // namespace

TEST_CASE("the first interval starts at creation and counts from zero", "[billing][collector]") {
  IntervalBuilder b(web1(), 1000);
  CHECK_FALSE(b.flush().has_value());  // nothing sampled yet

  Reading s1 = at(3000);
  s1.set(Metric::CpuUserSeconds, 0.5);
  s1.set(Metric::CpuSystemSeconds, 0.25);
  s1.set(Metric::MemoryPeakBytes, 1000, 4000);
  s1.set(Metric::ProcessesPeak, 3);
  s1.set(Metric::FilesOpened, 7);
  Reading s2 = at(5000);
  s2.set(Metric::CpuUserSeconds, 1.5);
  s2.set(Metric::CpuSystemSeconds, 0.25);
  s2.set(Metric::MemoryPeakBytes, 3000, 4000);
  s2.set(Metric::ProcessesPeak, 2);
  s2.set(Metric::FilesOpened, 9);
  b.add(s1);
  b.add(s2);
  REQUIRE(b.pending() == 2);

  auto batch = b.flush();
  REQUIRE(batch.has_value());
  CHECK(batch->instance.instance == "web1");
  CHECK(batch->instance.labels.at("team") == "a");
  CHECK(batch->start_ms == 1000);
  CHECK(batch->end_ms == 5000);
  CHECK_FALSE(batch->final);
  CHECK(row(*batch, Metric::CpuUserSeconds) == 1.5);
  CHECK(row(*batch, Metric::CpuSystemSeconds) == 0.25);
  CHECK(row(*batch, Metric::FilesOpened) == 9);
  // creation (0 B) -> s1: 2 s (realtime) * 500 B = 1000; s1 -> s2: 2 s (monotonic) * 2000 B = 4000.
  CHECK(row(*batch, Metric::MemoryByteSeconds) == 5000);
  CHECK(row(*batch, Metric::MemoryPeakBytes) == 4000);  // the mark grew from 0 in this interval
  CHECK(row(*batch, Metric::ProcessesPeak) == 3);
  // Metrics no sample had: no rows.
  CHECK_FALSE(row(*batch, Metric::Connections).has_value());
  CHECK_FALSE(row(*batch, Metric::ThreadsPeak).has_value());
  CHECK(b.take_warnings().empty());
  CHECK(b.pending() == 0);
  CHECK(b.start_ms() == 5000);
  CHECK_FALSE(b.flush().has_value());
}

TEST_CASE("rows of later intervals: deltas and peaks of that interval only", "[billing][collector]") {
  IntervalBuilder b(web1(), 0);
  Reading s1 = at(1000);
  s1.set(Metric::CpuUserSeconds, 2);
  s1.set(Metric::MemoryPeakBytes, 4096, 8192);
  s1.set(Metric::ThreadsPeak, 4, 9);
  b.add(s1);
  REQUIRE(b.flush().has_value());

  // The marks did not grow: the interval's peak is what its samples saw.
  Reading s2 = at(2000);
  s2.set(Metric::CpuUserSeconds, 2.75);
  s2.set(Metric::MemoryPeakBytes, 2048, 8192);
  s2.set(Metric::ThreadsPeak, 3, 9);
  Reading s3 = at(3000);
  s3.set(Metric::CpuUserSeconds, 3.5);
  s3.set(Metric::MemoryPeakBytes, 1024, 8192);
  s3.set(Metric::ThreadsPeak, 5, 9);
  b.add(s2);
  b.add(s3);
  auto second = b.flush();
  REQUIRE(second.has_value());
  CHECK(second->start_ms == 1000);
  CHECK(second->end_ms == 3000);
  CHECK(row(*second, Metric::CpuUserSeconds) == 1.5);
  CHECK(row(*second, Metric::MemoryPeakBytes) == 2048);
  CHECK(row(*second, Metric::ThreadsPeak) == 5);
  // (4096+2048)/2 * 1 + (2048+1024)/2 * 1
  CHECK(row(*second, Metric::MemoryByteSeconds) == 3072 + 1536);

  // The memory mark grew between s3 and s4: a spike no sample saw, inside this interval.
  Reading s4 = at(4000);
  s4.set(Metric::CpuUserSeconds, 3.5);
  s4.set(Metric::MemoryPeakBytes, 1024, 16384);
  s4.set(Metric::ThreadsPeak, 2, 9);
  b.add(s4);
  auto third = b.flush(true);
  REQUIRE(third.has_value());
  CHECK(third->final);
  CHECK(row(*third, Metric::CpuUserSeconds) == 0);  // idle: a zero row, not a missing one
  CHECK(row(*third, Metric::MemoryPeakBytes) == 16384);
  CHECK(row(*third, Metric::ThreadsPeak) == 2);
}

TEST_CASE("a reset high-water mark counts from its lower value", "[billing][collector]") {
  Reading base = at(0);
  base.set(Metric::MemoryPeakBytes, 100, 1000);
  Reading s1 = at(1000);
  s1.set(Metric::MemoryPeakBytes, 100, 300);  // someone wrote 0 to max_usage_in_bytes
  Reading s2 = at(2000);
  s2.set(Metric::MemoryPeakBytes, 100, 600);  // grew after the reset: reached in this interval
  auto one = interval_rows(base, false, {s1}, "x");
  REQUIRE(one.rows.size() == 2);  // MemoryByteSeconds, MemoryPeakBytes
  CHECK(one.rows[1].metric == Metric::MemoryPeakBytes);
  CHECK(one.rows[1].quantity == 100);
  auto two = interval_rows(base, false, {s1, s2}, "x");
  CHECK(two.rows[1].quantity == 600);
}

TEST_CASE("a counter going backwards counts 0 with a warning, then grows from the lower value", "[billing][collector]") {
  IntervalBuilder b(web1(), 0);
  Reading s1 = at(1000);
  s1.set(Metric::IoBytesWritten, 5000);
  b.add(s1);
  REQUIRE(b.flush().has_value());

  Reading s2 = at(2000);
  s2.set(Metric::IoBytesWritten, 1000);  // restarted: counted from 0 again
  Reading s3 = at(3000);
  s3.set(Metric::IoBytesWritten, 1500);
  b.add(s2);
  b.add(s3);
  auto batch = b.flush();
  REQUIRE(batch.has_value());
  CHECK(row(*batch, Metric::IoBytesWritten) == 500);
  auto w = b.take_warnings();
  REQUIRE(w.size() == 1);
  CHECK(w[0] == "web1: io_bytes_written: went backwards from 5000 to 1000 (a restarted instance or a reset counter?): counted 0");
  CHECK(b.take_warnings().empty());

  Reading s4 = at(4000);
  s4.set(Metric::IoBytesWritten, 1750);
  b.add(s4);
  CHECK(row(*b.flush(), Metric::IoBytesWritten) == 250);
}

TEST_CASE("a source that appears later counts from zero; one missing from the last sample uses the latest", "[billing][collector]") {
  IntervalBuilder b(web1(), 0);
  b.add(at(1000));  // no control page yet
  auto first = b.flush();
  REQUIRE(first.has_value());
  CHECK_FALSE(row(*first, Metric::FilesOpened).has_value());
  Reading s2 = at(2000);
  s2.set(Metric::FilesOpened, 12);
  b.add(s2);
  b.add(at(3000));  // a sample without it
  auto second = b.flush();
  CHECK(row(*second, Metric::FilesOpened) == 12);
  Reading s4 = at(4000);
  s4.set(Metric::FilesOpened, 20);
  b.add(s4);
  CHECK(row(*b.flush(), Metric::FilesOpened) == 8);  // the baseline kept 12
}

TEST_CASE("a restored collector continues from the cursor without counting twice", "[billing][collector]") {
  IntervalBuilder a(web1(), 0);
  Reading s1 = at(10000);
  s1.set(Metric::CpuUserSeconds, 0.1);  // not exact in binary: the cursor must keep every bit
  s1.set(Metric::Connections, 3);
  s1.set(Metric::ConnectionsPeak, 2, 3);
  s1.set(Metric::MemoryPeakBytes, 2048, 4096);
  a.add(s1);
  auto first = a.flush();
  REQUIRE(first.has_value());
  CHECK(first->cursor == a.cursor());

  auto decoded = decode_cursor(first->cursor);
  REQUIRE(decoded.ok());
  CHECK(decoded->realtime_ms == 10000);
  CHECK((*decoded)[Metric::CpuUserSeconds]->value == 0.1);
  CHECK((*decoded)[Metric::ConnectionsPeak]->value == 2);
  CHECK((*decoded)[Metric::ConnectionsPeak]->high_water == 3);
  CHECK_FALSE((*decoded)[Metric::CpuUserSeconds]->high_water.has_value());
  CHECK(encode_cursor(*decoded) == first->cursor);

  auto restored = IntervalBuilder::restore(web1(), first->cursor);
  REQUIRE(restored.ok());
  CHECK(restored->start_ms() == 10000);
  Reading s2 = at(12000);
  s2.set(Metric::CpuUserSeconds, 0.6);
  s2.set(Metric::Connections, 5);
  s2.set(Metric::ConnectionsPeak, 1, 3);
  s2.set(Metric::MemoryPeakBytes, 4096, 4096);
  a.add(s2);
  restored->add(s2);
  auto from_a = a.flush();
  auto from_r = restored->flush();
  REQUIRE(from_a.has_value());
  REQUIRE(from_r.has_value());
  CHECK(from_r->start_ms == 10000);
  CHECK(row(*from_r, Metric::CpuUserSeconds) == 0.6 - 0.1);
  CHECK(row(*from_r, Metric::Connections) == 2);
  CHECK(row(*from_r, Metric::ConnectionsPeak) == 1);  // the mark 3 is the first interval's
  CHECK(row(*from_r, Metric::MemoryByteSeconds) == 6144);  // 2 s (realtime) * 3072 B
  REQUIRE(from_a->rows.size() == from_r->rows.size());
  for (size_t i = 0; i < from_a->rows.size(); ++i) {
    CHECK(from_a->rows[i].metric == from_r->rows[i].metric);
    CHECK(from_a->rows[i].quantity == from_r->rows[i].quantity);
  }
  CHECK(from_a->cursor == from_r->cursor);
}

TEST_CASE("malformed cursors are refused naming the field; unknown metrics are skipped", "[billing][collector]") {
  auto msg = [](std::string_view text) {
    auto r = decode_cursor(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::Config);
    return r.error().message;
  };
  CHECK(msg("") == "cursor: not a JSON object");
  CHECK(msg("[1,2]") == "cursor: not a JSON object");
  CHECK(msg(R"({"v":2,"t":1,"m":{}})") == "cursor: v: unsupported version (expected 1)");
  CHECK(msg(R"({"v":1,"m":{}})") == "cursor: t: missing or not an integer");
  CHECK(msg(R"({"v":1,"t":1})") == "cursor: m: missing or not an object");
  CHECK(msg(R"({"v":1,"t":1,"m":{"cpu_user_seconds":"1"}})") ==
        "cursor: m.cpu_user_seconds: expected a number or [value, high_water]");
  CHECK(msg(R"({"v":1,"t":1,"m":{"memory_peak_bytes":[1]}})") ==
        "cursor: m.memory_peak_bytes: expected a number or [value, high_water]");

  auto fwd = decode_cursor(R"({"v":1,"t":7,"m":{"gpu_seconds":3,"files_opened":4}})");
  REQUIRE(fwd.ok());
  CHECK(fwd->realtime_ms == 7);
  CHECK((*fwd)[Metric::FilesOpened]->value == 4);

  auto r = IntervalBuilder::restore(web1(), "{");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "web1: cursor: not a JSON object");
}

TEST_CASE("clocks going backwards: no negative durations, no interval ending before it starts", "[billing][collector]") {
  IntervalBuilder b(web1(), 5000);
  Reading s1 = at(4000);  // sampled "before" creation: the realtime clock was set back
  s1.set(Metric::MemoryPeakBytes, 100);
  b.add(s1);
  auto batch = b.flush();
  REQUIRE(batch.has_value());
  CHECK(batch->start_ms == 5000);
  CHECK(batch->end_ms == 5000);
  CHECK(row(*batch, Metric::MemoryByteSeconds) == 0);
  CHECK(b.take_warnings().size() == 2);  // the integral step and the interval end
}
