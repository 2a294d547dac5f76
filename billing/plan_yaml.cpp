// plan.yaml (version 1, envrun-billing(5)) -> Plan. Every error is a Config error
// "<file>:<line>:<col>: <field>: <reason>" (the line and column of the offending node, from
// yaml-cpp's marks); unknown keys and metric names are errors.
#include <yaml-cpp/yaml.h>

#include <cstring>

#include "billing/plan.hpp"
#include "kernel/fs.hpp"

namespace envrun::billing {

namespace {

constexpr size_t kMaxPlanSize = 1u << 20;

struct Field {
  YAML::Node key;
  YAML::Node value;
};
using Fields = std::map<std::string, Field>;

const char* type_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar: return n.Tag() == "!" ? "a quoted string" : "a scalar";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "nothing (null)";
  }
}

std::string join(std::initializer_list<std::string_view> names) {
  std::string out;
  for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

std::string metric_names() {
  std::string out;
  for (const auto& m : kMetrics) out += (out.empty() ? "" : ", ") + std::string(m.name);
  return out;
}

class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  Error err(const YAML::Mark& at, const std::string& field, const std::string& why) const {
    std::string msg = source_;
    if (!at.is_null()) msg += ":" + std::to_string(at.line + 1) + ":" + std::to_string(at.column + 1);
    if (!field.empty()) msg += ": " + field;
    return Error::make(ErrorKind::Config, msg + ": " + why);
  }
  Error err(const YAML::Node& at, const std::string& field, const std::string& why) const {
    return err(at.Mark(), field, why);
  }

  // A mapping; with `known`, its keys must be among them.
  Result<Fields> fields(const YAML::Node& node, const std::string& field,
                        std::initializer_list<std::string_view> known = {}) const {
    if (!node.IsMap()) return err(node, field, std::string("expected a mapping, got ") + type_name(node));
    Fields out;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) return err(kv.first, field, "mapping keys must be scalars");
      const std::string& name = kv.first.Scalar();
      std::string path = field.empty() ? name : field + "." + name;
      bool is_known = known.size() == 0;
      for (auto k : known) is_known = is_known || name == k;
      if (!is_known) return err(kv.first, path, "unknown key (known: " + join(known) + ")");
      if (out.count(name)) return err(kv.first, path, "duplicate key");
      out.emplace(name, Field{kv.first, kv.second});
    }
    return out;
  }

  // A plain (unquoted) scalar.
  Result<std::string> plain(const YAML::Node& n, const std::string& field, const char* what) const {
    if (!n.IsScalar() || n.Tag() != "?") {
      std::string got = n.IsScalar() ? "the quoted string \"" + n.Scalar() + "\"" : type_name(n);
      return err(n, field, std::string("expected ") + what + ", got " + got);
    }
    return n.Scalar();
  }

  Result<std::string> text(const YAML::Node& n, const std::string& field) const {
    if (!n.IsScalar()) return err(n, field, std::string("expected a string, got ") + type_name(n));
    return n.Scalar();
  }

  Result<Decimal> decimal(const YAML::Node& n, const std::string& field, int max_scale = 24) const {
    std::string s = ENVRUN_TRY(plain(n, field, "a number"));
    auto d = parse_decimal(s);
    if (!d) return err(n, field, d.error().message);
    if (d->scale > max_scale)
      return err(n, field, "\"" + s + "\": more than " + std::to_string(max_scale) + " decimal places");
    return *d;
  }

  Result<int> integer(const YAML::Node& n, const std::string& field, int lo, int hi) const {
    std::string s = ENVRUN_TRY(plain(n, field, "an integer"));
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
      return err(n, field, "expected an integer, got \"" + s + "\"");
    int v = std::stoi(s);
    if (v < lo || v > hi)
      return err(n, field, s + " is out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    return v;
  }

 private:
  const std::string& source_;
};

Result<Metric> metric_key(const Reader& r, const Field& f, const std::string& field, const std::string& name) {
  auto m = metric_by_name(name);
  if (!m) return r.err(f.key, field, "unknown metric (known: " + metric_names() + ")");
  return *m;
}

// One metric's prices: {unit_price, unit, free_tier}; the plan's own entries need unit_price.
Result<MetricPriceOverride> metric_entry(const Reader& r, const Field& f, const std::string& field, Metric m,
                                         bool need_price) {
  Fields k = ENVRUN_TRY(r.fields(f.value, field, {"unit_price", "unit", "free_tier"}));
  MetricPriceOverride out;
  if (k.count("unit_price")) out.unit_price = ENVRUN_TRY(r.decimal(k.at("unit_price").value, field + ".unit_price"));
  else if (need_price) return r.err(f.value, field + ".unit_price", "required");
  // Quantities are kept to 9 decimals, so is the free tier.
  if (k.count("free_tier")) out.free_tier = ENVRUN_TRY(r.decimal(k.at("free_tier").value, field + ".free_tier", 9));
  if (k.count("unit")) {
    const YAML::Node& u = k.at("unit").value;
    std::string unit = ENVRUN_TRY(r.text(u, field + ".unit"));
    if (unit != info(m).unit)
      return r.err(u, field + ".unit", "\"" + unit + "\": " + std::string(info(m).name) + " is priced per \"" +
                                           std::string(info(m).unit) + "\", its own unit");
  }
  return out;
}

Result<std::map<Metric, MetricPriceOverride>> metric_map(const Reader& r, const YAML::Node& n, const std::string& field,
                                                         bool need_price) {
  std::map<Metric, MetricPriceOverride> out;
  if (n.IsNull()) return out;
  Fields k = ENVRUN_TRY(r.fields(n, field));
  for (const auto& [name, f] : k) {
    std::string path = field + "." + name;
    Metric m = ENVRUN_TRY(metric_key(r, f, path, name));
    out[m] = ENVRUN_TRY(metric_entry(r, f, path, m, need_price));
  }
  return out;
}

Result<void> parse_rounding(const Reader& r, const YAML::Node& n, Rounding& out) {
  Fields k = ENVRUN_TRY(r.fields(n, "rounding", {"mode", "digits"}));
  if (k.count("mode")) {
    const YAML::Node& m = k.at("mode").value;
    std::string s = ENVRUN_TRY(r.text(m, "rounding.mode"));
    bool found = false;
    for (auto mode : {RoundingMode::HalfUp, RoundingMode::Up, RoundingMode::Down, RoundingMode::HalfEven})
      if (s == rounding_mode_name(mode)) out.mode = mode, found = true;
    if (!found) return r.err(m, "rounding.mode", "unknown mode \"" + s + "\" (half-up, up, down, half-even)");
  }
  if (k.count("digits")) out.digits = ENVRUN_TRY(r.integer(k.at("digits").value, "rounding.digits", 0, 9));
  return ok();
}

Result<void> parse_bundles(const Reader& r, const YAML::Node& n, Plan& plan) {
  if (n.IsNull()) return ok();
  Fields k = ENVRUN_TRY(r.fields(n, "bundles"));
  for (const auto& [name, f] : k) {
    std::string path = "bundles." + name;
    Fields b = ENVRUN_TRY(r.fields(f.value, path, {"metrics", "minimum_charge"}));
    BundlePlan bp;
    if (b.count("metrics")) bp.metrics = ENVRUN_TRY(metric_map(r, b.at("metrics").value, path + ".metrics", false));
    if (b.count("minimum_charge"))
      bp.minimum_charge = ENVRUN_TRY(r.decimal(b.at("minimum_charge").value, path + ".minimum_charge"));
    plan.bundles[name] = std::move(bp);
  }
  return ok();
}

Result<void> parse_head(const Reader& r, const YAML::Node& doc, const Fields& top, Plan& plan) {
  if (!top.count("version")) return r.err(doc, "version", "required (this envrun reads 1)");
  plan.version = ENVRUN_TRY(r.integer(top.at("version").value, "version", 1, 1));
  if (!top.count("currency")) return r.err(doc, "currency", "required (an ISO 4217 code such as EUR)");
  const YAML::Node& c = top.at("currency").value;
  plan.currency = ENVRUN_TRY(r.text(c, "currency"));
  if (plan.currency.size() != 3 || plan.currency.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)
    return r.err(c, "currency", "\"" + plan.currency + "\" is not an ISO 4217 code (three capital letters, such as EUR)");
  return ok();
}

Result<Plan> parse_document(const Reader& r, const YAML::Node& doc, const std::string& source) {
  Plan plan;
  plan.source = source;
  Fields top = ENVRUN_TRY(r.fields(doc, "", {"version", "currency", "rounding", "minimum_charge", "metrics", "bundles"}));
  ENVRUN_CHECK(parse_head(r, doc, top, plan));
  if (top.count("rounding")) ENVRUN_CHECK(parse_rounding(r, top.at("rounding").value, plan.rounding));
  if (top.count("minimum_charge"))
    plan.minimum_charge = ENVRUN_TRY(r.decimal(top.at("minimum_charge").value, "minimum_charge"));
  if (top.count("metrics")) {
    auto prices = ENVRUN_TRY(metric_map(r, top.at("metrics").value, "metrics", true));
    for (const auto& [m, p] : prices) plan.metrics[m] = MetricPrice{*p.unit_price, p.free_tier.value_or(Decimal{})};
  }
  if (top.count("bundles")) ENVRUN_CHECK(parse_bundles(r, top.at("bundles").value, plan));
  return plan;
}

}  // namespace

Result<Plan> parse_plan_yaml(const std::string& text, const std::string& source) {
  Reader r(source);
  if (text.size() > kMaxPlanSize)
    return Error::make(ErrorKind::Config, source + ": " + std::to_string(text.size()) + " bytes, larger than the " +
                                              std::to_string(kMaxPlanSize) + " bytes allowed");
  try {
    YAML::Node doc = YAML::Load(text);
    return parse_document(r, doc, source);
  } catch (const YAML::Exception& e) {
    return r.err(e.mark, "", e.msg);
  } catch (const std::exception& e) {
    return Error::make(ErrorKind::Config, source + ": " + e.what());
  }
}

Result<Plan> load_plan(const std::string& path) {
  auto text = fs::read_file(path);
  if (!text) return Error::make(ErrorKind::Config, path + ": cannot read: " + std::strerror(text.error().sys_errno));
  return parse_plan_yaml(*text, path);
}

}  // namespace envrun::billing
