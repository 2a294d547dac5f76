// Exact decimal money arithmetic and plan look-ups (plan.hpp). Parsing: plan_yaml.cpp.
#include "billing/plan.hpp"

#include <cmath>

namespace envrun::billing {

namespace {

constexpr int kMaxScale = 24;
constexpr int kMaxDigits = 18;
constexpr int kQuantityScale = 9;

Error reason(std::string why) { return Error::make(ErrorKind::Config, std::move(why)); }

Int128 pow10(int n) {
  Int128 p = 1;
  while (n-- > 0) p *= 10;
  return p;
}

// a * 10^n, or nullopt on overflow.
std::optional<Int128> scale_up(Int128 a, int n) {
  Int128 out = a;
  for (int i = 0; i < n; ++i)
    if (__builtin_mul_overflow(out, Int128(10), &out)) return std::nullopt;
  return out;
}

std::string int128_str(Int128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  std::string s;
  while (v != 0) {
    int d = int(v % 10);
    s.insert(s.begin(), char('0' + (neg ? -d : d)));
    v /= 10;
  }
  return neg ? "-" + s : s;
}

// q / div rounded by `mode` (q >= 0, div > 0).
Int128 divide(Int128 q, Int128 div, RoundingMode mode) {
  Int128 whole = q / div, rem = q % div;
  if (rem == 0) return whole;
  switch (mode) {
    case RoundingMode::Down: return whole;
    case RoundingMode::Up: return whole + 1;
    case RoundingMode::HalfUp: return rem >= div - rem ? whole + 1 : whole;
    case RoundingMode::HalfEven:
      if (rem != div - rem) return rem > div - rem ? whole + 1 : whole;
      return whole % 2 ? whole + 1 : whole;
  }
  return whole;
}

}  // namespace

std::string Decimal::str() const {
  std::string digits = int128_str(units < 0 ? -units : units);
  if (scale > 0) {
    if (int(digits.size()) <= scale) digits.insert(0, size_t(scale - int(digits.size()) + 1), '0');
    digits.insert(digits.size() - size_t(scale), ".");
  }
  return units < 0 ? "-" + digits : digits;
}

Decimal Decimal::normalized() const {
  Decimal d = *this;
  while (d.scale > 0 && d.units % 10 == 0) d.units /= 10, --d.scale;
  if (d.units == 0) d.scale = 0;
  return d;
}

int compare(const Decimal& a, const Decimal& b) {
  int s = std::max(a.scale, b.scale);
  auto x = scale_up(a.units, s - a.scale), y = scale_up(b.units, s - b.scale);
  if (x && y) return *x < *y ? -1 : *x > *y ? 1 : 0;
  long double fa = (long double)a.units / (long double)pow10(a.scale), fb = (long double)b.units / (long double)pow10(b.scale);
  return fa < fb ? -1 : fa > fb ? 1 : 0;
}

Result<Decimal> parse_decimal(std::string_view text) {
  std::string_view s = text;
  auto not_number = [&] { return reason("expected a decimal number, got \"" + std::string(text) + "\""); };
  if (s.empty()) return not_number();
  if (s[0] == '-' || s[0] == '+') {
    auto rest = parse_decimal(s.substr(1));
    if (!rest) return not_number();
    if (s[0] == '+') return rest;
    if (rest->is_zero()) return Decimal{};
    return reason("must not be negative (got " + std::string(text) + ")");
  }
  Decimal d;
  int digits = 0;
  bool any = false, point = false;
  size_t i = 0;
  for (; i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'); ++i) {
    if (s[i] == '.') {
      if (point) return not_number();
      point = true;
      continue;
    }
    any = true;
    if (d.units == 0 && s[i] == '0') {  // leading zeros are not significant
      if (point) ++d.scale;
      continue;
    }
    if (++digits > kMaxDigits) return reason("\"" + std::string(text) + "\": more than 18 significant digits");
    d.units = d.units * 10 + (s[i] - '0');
    if (point) ++d.scale;
  }
  if (!any) return not_number();
  if (i < s.size()) {
    if (s[i] != 'e' && s[i] != 'E') return not_number();
    std::string_view e = s.substr(i + 1);
    bool neg = !e.empty() && e[0] == '-';
    if (!e.empty() && (e[0] == '-' || e[0] == '+')) e.remove_prefix(1);
    if (e.empty() || e.size() > 3 || e.find_first_not_of("0123456789") != std::string_view::npos) return not_number();
    int exp = std::stoi(std::string(e));
    d.scale += neg ? exp : -exp;
  }
  if (d.scale < 0) {
    auto up = scale_up(d.units, -d.scale);
    if (!up || *up > pow10(kMaxDigits + 6)) return reason("\"" + std::string(text) + "\" is too large");
    d = Decimal{*up, 0};
  }
  d = d.normalized();
  if (d.scale > kMaxScale) return reason("\"" + std::string(text) + "\": more than 24 decimal places");
  return d;
}

Result<Decimal> quantity_decimal(double quantity) {
  if (!std::isfinite(quantity) || quantity < 0 || quantity > 1e27)
    return Error::make(ErrorKind::Generic, "quantity " + std::to_string(quantity) + " is not a number in [0, 1e27]");
  // The double's own value to the nanounit: its integer part exactly, its fraction (exact
  // too: q - floor(q)) times 1e9 in long double, far below a nanounit of error.
  double whole = std::floor(quantity);
  long double nano = std::roundl((long double)(quantity - whole) * 1e9L);
  return Decimal{Int128(whole) * 1000000000 + Int128(nano), kQuantityScale};
}

std::string_view rounding_mode_name(RoundingMode m) {
  switch (m) {
    case RoundingMode::HalfUp: return "half-up";
    case RoundingMode::Up: return "up";
    case RoundingMode::Down: return "down";
    case RoundingMode::HalfEven: return "half-even";
  }
  return "?";
}

Result<Decimal> round(const Decimal& value, const Rounding& r) {
  if (value.scale <= r.digits) {
    auto up = scale_up(value.units, r.digits - value.scale);
    if (!up) return Error::make(ErrorKind::Generic, value.str() + ": too large to round to " + std::to_string(r.digits) + " digits");
    return Decimal{*up, r.digits};
  }
  if (value.scale - r.digits > 36) return Error::make(ErrorKind::Generic, "a value with " + std::to_string(value.scale) + " decimals cannot be rounded exactly");
  return Decimal{divide(value.units, pow10(value.scale - r.digits), r.mode), r.digits};
}

Result<Charge> charge(const Decimal& quantity, const MetricPrice& price, const Rounding& r) {
  // quantity and free tier at one scale (the larger), then the pricing quantity.
  int s = std::max(quantity.scale, price.free_tier.scale);
  auto q = scale_up(quantity.units, s - quantity.scale), f = scale_up(price.free_tier.units, s - price.free_tier.scale);
  if (!q || !f) return Error::make(ErrorKind::Generic, "quantity " + quantity.str() + " is too large to price");
  Decimal pricing{*q > *f ? *q - *f : 0, s};
  // The exact product; when it would not fit 128 bits (quantities beyond ~1e20 with long
  // prices), the quantity's last decimals are dropped first (they are below a double's
  // precision there anyway).
  Decimal p = pricing, product;
  while (__builtin_mul_overflow(p.units, price.unit_price.units, &product.units)) {
    if (p.scale == 0) return Error::make(ErrorKind::Generic, "quantity " + quantity.str() + " is too large to price");
    p.units = divide(p.units, 10, RoundingMode::HalfEven);
    --p.scale;
  }
  product.scale = p.scale + price.unit_price.scale;
  Decimal cost = ENVRUN_TRY(round(product, r));
  return Charge{pricing, cost};
}

MetricPrice Plan::price(const std::string& bundle, Metric metric) const {
  MetricPrice p;
  if (auto it = metrics.find(metric); it != metrics.end()) p = it->second;
  auto b = bundles.find(bundle);
  if (b == bundles.end()) return p;
  auto o = b->second.metrics.find(metric);
  if (o == b->second.metrics.end()) return p;
  if (o->second.unit_price) p.unit_price = *o->second.unit_price;
  if (o->second.free_tier) p.free_tier = *o->second.free_tier;
  return p;
}

Decimal Plan::minimum_for(const std::string& bundle) const {
  auto b = bundles.find(bundle);
  if (b != bundles.end() && b->second.minimum_charge) return *b->second.minimum_charge;
  return minimum_charge;
}

}  // namespace envrun::billing
