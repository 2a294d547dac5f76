// Pricing plans (plan.yaml, envrun-billing(5)) and the money arithmetic of exports.
//
// Money is exact: unit prices, free tiers and minimum charges are decimals kept as written
// (an integer and a power of ten); a quantity from the ledger is taken to 9 decimal places;
// a row's cost is their product in 128-bit integers, rounded once to the plan's digits with
// its rounding mode. Sums of costs are sums of those rounded amounts.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "billing/metrics.hpp"
#include "kernel/result.hpp"

namespace envrun::billing {

using Int128 = __int128;

// units * 10^-scale; scale >= 0.
struct Decimal {
  Int128 units = 0;
  int scale = 0;

  // Exactly `scale` decimals: {12345, 2} -> "123.45", {5, 0} -> "5".
  std::string str() const;
  // Trailing fractional zeros dropped: {1500, 3} -> {15, 1}.
  Decimal normalized() const;
  bool is_zero() const { return units == 0; }
};

// Comparison by value (scales may differ).
int compare(const Decimal& a, const Decimal& b);

// A non-negative decimal as written in a plan: "0.00002", "1.0e-12", "3600", "0.50".
// At most 18 significant digits and 24 decimal places. Errors carry only the reason.
Result<Decimal> parse_decimal(std::string_view text);

// A ledger quantity (finite, >= 0) to 9 decimal places.
Result<Decimal> quantity_decimal(double quantity);

enum class RoundingMode { HalfUp, Up, Down, HalfEven };
std::string_view rounding_mode_name(RoundingMode m);

struct Rounding {
  RoundingMode mode = RoundingMode::HalfUp;
  int digits = 2;  // 0..9
};

// `value` to `r.digits` decimals (the result's scale is r.digits); value >= 0.
Result<Decimal> round(const Decimal& value, const Rounding& r);

struct MetricPrice {
  Decimal unit_price;  // per unit of the metric (info(metric).unit)
  Decimal free_tier;   // in the metric's unit, per bundle and window
};

// What `quantity` costs: (quantity - free tier, at least 0) * unit price, rounded once.
struct Charge {
  Decimal pricing_quantity;  // quantity after the free tier (scale 9)
  Decimal cost;              // scale = rounding.digits
};
Result<Charge> charge(const Decimal& quantity, const MetricPrice& price, const Rounding& r);

struct MetricPriceOverride {
  std::optional<Decimal> unit_price;
  std::optional<Decimal> free_tier;
};

struct BundlePlan {
  std::map<Metric, MetricPriceOverride> metrics;
  std::optional<Decimal> minimum_charge;
};

struct Plan {
  std::string source;  // file name, for messages
  int version = 1;
  std::string currency;  // ISO 4217 form: three capital letters
  Rounding rounding;
  Decimal minimum_charge;  // per bundle and window with usage; 0: none
  std::map<Metric, MetricPrice> metrics;
  std::map<std::string, BundlePlan> bundles;  // overrides by bundle name

  // The bundle's override fields over the plan's; a metric the plan does not name costs 0
  // and has no free tier.
  MetricPrice price(const std::string& bundle, Metric metric) const;
  Decimal minimum_for(const std::string& bundle) const;
};

// Errors (ErrorKind::Config): "<source>:<line>:<col>: <field>: <reason>".
Result<Plan> parse_plan_yaml(const std::string& text, const std::string& source);
Result<Plan> load_plan(const std::string& path);

}  // namespace envrun::billing
