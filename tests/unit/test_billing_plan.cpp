// billing/plan: plan.yaml parsing (every error names file:line:col and the field), exact
// decimals, the four rounding modes, free tiers, per-bundle overrides.
#include <catch2/catch.hpp>

#include "billing/plan.hpp"

using namespace envrun;
using namespace envrun::billing;

namespace {

const char* kPlan = R"(version: 1
currency: EUR
rounding: {mode: half-even, digits: 3}
minimum_charge: 0.50
metrics:
  cpu_user_seconds: {unit_price: 0.00002, unit: s, free_tier: 3600}
  memory_byte_seconds: {unit_price: 1.0e-12}
  net_bytes_sent:
    unit_price: 0.000000001
bundles:
  redis: {metrics: {cpu_user_seconds: {unit_price: 0.00001}}, minimum_charge: 0}
  web:
    metrics:
      net_bytes_sent: {free_tier: 1000000}
      files_opened: {unit_price: 0.001}
)";

Plan parse_ok(const std::string& yaml) {
  auto p = parse_plan_yaml(yaml, "plan.yaml");
  INFO(yaml);
  if (!p) FAIL("unexpected error: " << p.error().message);
  return std::move(*p);
}

std::string parse_err(const std::string& yaml) {
  auto p = parse_plan_yaml(yaml, "plan.yaml");
  INFO(yaml);
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().kind == ErrorKind::Config);
  return p.error().message;
}

std::string dec(std::string_view text) {
  auto d = parse_decimal(text);
  if (!d) return "error: " + d.error().message;
  return std::to_string(int64_t(d->units)) + "e-" + std::to_string(d->scale);
}

std::string rounded(int64_t units, int scale, RoundingMode mode, int digits) {
  auto r = round(Decimal{units, scale}, Rounding{mode, digits});
  REQUIRE(r.ok());
  return r->str();
}

std::string cost(double quantity, const char* price, const char* free, Rounding r = {}) {
  MetricPrice p{*parse_decimal(price), *parse_decimal(free)};
  auto c = charge(*quantity_decimal(quantity), p, r);
  REQUIRE(c.ok());
  return c->cost.str();
}

}  // namespace

TEST_CASE("plan: a full plan") {
  Plan p = parse_ok(kPlan);
  CHECK(p.source == "plan.yaml");
  CHECK(p.version == 1);
  CHECK(p.currency == "EUR");
  CHECK(p.rounding.mode == RoundingMode::HalfEven);
  CHECK(p.rounding.digits == 3);
  CHECK(p.minimum_charge.str() == "0.5");
  auto cpu = p.price("other", Metric::CpuUserSeconds);
  CHECK(cpu.unit_price.str() == "0.00002");
  CHECK(cpu.free_tier.str() == "3600");
  CHECK(p.price("other", Metric::MemoryByteSeconds).unit_price.str() == "0.000000000001");
  CHECK(p.price("other", Metric::NetBytesSent).unit_price.str() == "0.000000001");
  // redis: its own CPU price, the plan's free tier; no minimum.
  CHECK(p.price("redis", Metric::CpuUserSeconds).unit_price.str() == "0.00001");
  CHECK(p.price("redis", Metric::CpuUserSeconds).free_tier.str() == "3600");
  CHECK(p.minimum_for("redis").is_zero());
  CHECK(p.minimum_for("web").str() == "0.5");
  // web: a free tier on the plan's price, and a metric the plan does not price.
  CHECK(p.price("web", Metric::NetBytesSent).unit_price.str() == "0.000000001");
  CHECK(p.price("web", Metric::NetBytesSent).free_tier.str() == "1000000");
  CHECK(p.price("web", Metric::FilesOpened).unit_price.str() == "0.001");
  CHECK(p.price("other", Metric::FilesOpened).unit_price.is_zero());  // not in the plan: 0
  CHECK(p.price("other", Metric::FilesOpened).free_tier.is_zero());
}

TEST_CASE("plan: defaults are half-up to 2 digits, no minimum") {
  Plan p = parse_ok("version: 1\ncurrency: USD\n");
  CHECK(p.rounding.mode == RoundingMode::HalfUp);
  CHECK(p.rounding.digits == 2);
  CHECK(p.minimum_charge.is_zero());
  CHECK(p.metrics.empty());
}

TEST_CASE("plan: decimals are exact as written") {
  CHECK(dec("0.00002") == "2e-5");
  CHECK(dec("1.0e-12") == "1e-12");
  CHECK(dec("3600") == "3600e-0");
  CHECK(dec("0.50") == "5e-1");
  CHECK(dec("1e3") == "1000e-0");
  CHECK(dec("2.5E+2") == "250e-0");
  CHECK(dec("007.250") == "725e-2");
  CHECK(dec("-0") == "0e-0");
  CHECK(dec("-0.5") == "error: must not be negative (got -0.5)");
  CHECK(dec("abc") == "error: expected a decimal number, got \"abc\"");
  CHECK(dec(".inf") == "error: expected a decimal number, got \".inf\"");
  CHECK(dec("1.2.3") == "error: expected a decimal number, got \"1.2.3\"");
  CHECK(dec("1e") == "error: expected a decimal number, got \"1e\"");
  CHECK(dec("1e-25") == "error: \"1e-25\": more than 24 decimal places");
  CHECK(dec("1234567890123456789") == "error: \"1234567890123456789\": more than 18 significant digits");
  CHECK(Decimal{5, 3}.str() == "0.005");
  CHECK(Decimal{12345, 2}.str() == "123.45");
  CHECK(Decimal{1500, 3}.normalized().str() == "1.5");
  CHECK(compare(Decimal{5, 1}, Decimal{50, 2}) == 0);
  CHECK(compare(Decimal{49, 2}, Decimal{5, 1}) < 0);
}

TEST_CASE("plan: rounding modes, applied once") {
  using M = RoundingMode;
  // 0.125: a tie; 0.135: a tie with an odd neighbour; 0.0049 and 0.0051: below and above half.
  CHECK(rounded(125, 3, M::HalfUp, 2) == "0.13");
  CHECK(rounded(125, 3, M::HalfEven, 2) == "0.12");
  CHECK(rounded(135, 3, M::HalfEven, 2) == "0.14");
  CHECK(rounded(125, 3, M::Up, 2) == "0.13");
  CHECK(rounded(125, 3, M::Down, 2) == "0.12");
  CHECK(rounded(49, 4, M::HalfUp, 2) == "0.00");
  CHECK(rounded(49, 4, M::HalfEven, 2) == "0.00");
  CHECK(rounded(49, 4, M::Up, 2) == "0.01");
  CHECK(rounded(51, 4, M::Down, 2) == "0.00");
  CHECK(rounded(51, 4, M::HalfEven, 2) == "0.01");
  CHECK(rounded(25, 1, M::HalfEven, 0) == "2");
  CHECK(rounded(35, 1, M::HalfEven, 0) == "4");
  CHECK(rounded(25, 1, M::HalfUp, 0) == "3");
  CHECK(rounded(2, 0, M::Down, 2) == "2.00");  // fewer decimals than asked: padded
  CHECK(rounded(120, 2, M::Up, 1) == "1.2");   // exact: no step up
}

TEST_CASE("plan: charges subtract the free tier, multiply exactly, round once") {
  // 7200 s - 3600 free = 3600 s at 0.00002 = 0.072.
  CHECK(cost(7200, "0.00002", "3600") == "0.07");
  CHECK(cost(7200, "0.00002", "3600", {RoundingMode::Up, 2}) == "0.08");
  CHECK(cost(7200, "0.00002", "3600", {RoundingMode::HalfUp, 3}) == "0.072");
  CHECK(cost(3000, "0.00002", "3600") == "0.00");  // under the free tier: nothing
  // 1.5e12 byte-seconds at 1e-12 = 1.5 exactly (no binary fraction on the way).
  CHECK(cost(1.5e12, "1.0e-12", "0") == "1.50");
  // A double that is not exact in binary is taken to 9 decimals: 0.1 * 0.05 = 0.005, a tie.
  CHECK(cost(0.1, "0.05", "0", {RoundingMode::HalfUp, 2}) == "0.01");
  CHECK(cost(0.1, "0.05", "0", {RoundingMode::HalfEven, 2}) == "0.00");
  // 1.15 * 1 at 1 digit: a tie in decimal (a double product would give 1.1499999...).
  CHECK(cost(1.15, "1", "0", {RoundingMode::HalfUp, 1}) == "1.2");
  // Large quantities: 1e24 byte-seconds at 1e-12, and a long price that overflows 128 bits
  // with 9 quantity decimals (they are dropped, the result stays exact here).
  CHECK(cost(1e24, "1.0e-12", "0") == "1000000000000.00");
  CHECK(cost(1e20, "0.123456789012345678", "0") == "12345678901234567800.00");
  CHECK(cost(123456789.123456789, "1", "0", {RoundingMode::Down, 9}) == "123456789.123456791");  // the double's own value
  auto c = charge(*quantity_decimal(7200), MetricPrice{*parse_decimal("1"), *parse_decimal("1000.5")}, {});
  REQUIRE(c.ok());
  CHECK(c->pricing_quantity.normalized().str() == "6199.5");
  CHECK_FALSE(quantity_decimal(-1).ok());
  CHECK_FALSE(quantity_decimal(1e30).ok());
}

TEST_CASE("plan: errors name file:line:col and the field") {
  const std::string head = "version: 1\ncurrency: EUR\n";
  CHECK(parse_err("currency: EUR\n") == "plan.yaml:1:1: version: required (this envrun reads 1)");
  CHECK(parse_err("version: 1\n") == "plan.yaml:1:1: currency: required (an ISO 4217 code such as EUR)");
  CHECK(parse_err("version: 2\ncurrency: EUR\n") == "plan.yaml:1:10: version: 2 is out of range (1..1)");
  CHECK(parse_err("version: one\ncurrency: EUR\n") == "plan.yaml:1:10: version: expected an integer, got \"one\"");
  CHECK(parse_err("version: 1\ncurrency: eur\n") ==
        "plan.yaml:2:11: currency: \"eur\" is not an ISO 4217 code (three capital letters, such as EUR)");
  CHECK(parse_err("version: 1\ncurrency: EURO\n") ==
        "plan.yaml:2:11: currency: \"EURO\" is not an ISO 4217 code (three capital letters, such as EUR)");
  CHECK(parse_err(head + "discount: 5\n") ==
        "plan.yaml:3:1: discount: unknown key (known: version, currency, rounding, minimum_charge, metrics, bundles)");
  CHECK(parse_err(head + "rounding: {mode: nearest}\n") ==
        "plan.yaml:3:18: rounding.mode: unknown mode \"nearest\" (half-up, up, down, half-even)");
  CHECK(parse_err(head + "rounding: {digits: 12}\n") == "plan.yaml:3:20: rounding.digits: 12 is out of range (0..9)");
  CHECK(parse_err(head + "rounding: half-up\n") == "plan.yaml:3:11: rounding: expected a mapping, got a scalar");
  CHECK(parse_err(head + "minimum_charge: -1\n") == "plan.yaml:3:17: minimum_charge: must not be negative (got -1)");
  CHECK_THAT(parse_err(head + "metrics:\n  cpu_usr_seconds: {unit_price: 1}\n"),
             Catch::StartsWith("plan.yaml:4:3: metrics.cpu_usr_seconds: unknown metric (known: cpu_user_seconds, cpu_system_seconds,"));
  CHECK(parse_err(head + "metrics:\n  cpu_user_seconds: {unit_price: 1, price: 2}\n") ==
        "plan.yaml:4:37: metrics.cpu_user_seconds.price: unknown key (known: unit_price, unit, free_tier)");
  CHECK(parse_err(head + "metrics:\n  cpu_user_seconds: {unit_price: -0.5}\n") ==
        "plan.yaml:4:34: metrics.cpu_user_seconds.unit_price: must not be negative (got -0.5)");
  CHECK(parse_err(head + "metrics:\n  cpu_user_seconds: {unit_price: \"0.5\"}\n") ==
        "plan.yaml:4:34: metrics.cpu_user_seconds.unit_price: expected a number, got the quoted string \"0.5\"");
  CHECK(parse_err(head + "metrics:\n  cpu_user_seconds: {unit_price: [1]}\n") ==
        "plan.yaml:4:34: metrics.cpu_user_seconds.unit_price: expected a number, got a list");
  CHECK(parse_err(head + "metrics:\n  cpu_user_seconds: {unit_price: cheap}\n") ==
        "plan.yaml:4:34: metrics.cpu_user_seconds.unit_price: expected a decimal number, got \"cheap\"");
  CHECK(parse_err(head + "metrics:\n  cpu_user_seconds: {free_tier: 10}\n") ==
        "plan.yaml:4:21: metrics.cpu_user_seconds.unit_price: required");
  CHECK(parse_err(head + "metrics:\n  cpu_user_seconds: {unit_price: 1, unit: h}\n") ==
        "plan.yaml:4:43: metrics.cpu_user_seconds.unit: \"h\": cpu_user_seconds is priced per \"s\", its own unit");
  CHECK(parse_err(head + "metrics:\n  cpu_user_seconds: {unit_price: 1, free_tier: 0.0000000001}\n") ==
        "plan.yaml:4:48: metrics.cpu_user_seconds.free_tier: \"0.0000000001\": more than 9 decimal places");
  CHECK(parse_err(head + "metrics:\n  - cpu_user_seconds\n") == "plan.yaml:4:3: metrics: expected a mapping, got a list");
  CHECK(parse_err(head + "bundles:\n  redis: {metrics: {cpu_user_secs: {unit_price: 1}}}\n")
            .rfind("plan.yaml:4:21: bundles.redis.metrics.cpu_user_secs: unknown metric (known: ", 0) == 0);
  CHECK(parse_err(head + "bundles:\n  redis: {minimum: 1}\n") ==
        "plan.yaml:4:11: bundles.redis.minimum: unknown key (known: metrics, minimum_charge)");
  CHECK(parse_err(head + "bundles:\n  redis: {minimum_charge: x}\n") ==
        "plan.yaml:4:27: bundles.redis.minimum_charge: expected a decimal number, got \"x\"");
  CHECK(parse_err(head + "metrics: {cpu_user_seconds: {unit_price: 1}\n") .rfind("plan.yaml:4:1: ", 0) == 0);  // YAML syntax
  CHECK(parse_err("") == "plan.yaml: expected a mapping, got nothing (null)");
}

TEST_CASE("plan: load_plan names an unreadable file") {
  auto p = load_plan("/nonexistent/plan.yaml");
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().message == "/nonexistent/plan.yaml: cannot read: No such file or directory");
}
