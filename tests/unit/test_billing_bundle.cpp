// BUNDLE/envrun.yaml billing settings: what is accepted, and errors that name line and field.
#include <catch2/catch.hpp>

#include "billing/bundle_billing.hpp"

using envrun::billing::parse_bundle_billing;

TEST_CASE("envrun.yaml: bundle name and labels") {
  auto r = parse_bundle_billing("version: 1\nbilling:\n  bundle: shop\n  labels:\n    team: blue\n    cost.centre: \"42\"\n", "e.yaml");
  REQUIRE(r.ok());
  CHECK(r->bundle == "shop");
  REQUIRE(r->labels.size() == 2);
  CHECK(r->labels.at("team") == "blue");
  CHECK(r->labels.at("cost.centre") == "42");
}

TEST_CASE("envrun.yaml: empty file and no billing section give no settings") {
  auto empty = parse_bundle_billing("", "e.yaml");
  REQUIRE(empty.ok());
  CHECK(empty->bundle.empty());
  CHECK(empty->labels.empty());
  auto only_version = parse_bundle_billing("version: 1\n", "e.yaml");
  REQUIRE(only_version.ok());
  CHECK(only_version->labels.empty());
}

TEST_CASE("envrun.yaml: errors name file, line, column and field") {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"billing:\n  lables: {a: b}\n", "e.yaml:2:3: billing.lables: unknown key (known: bundle, labels)"},
      {"bill: {}\n", "e.yaml:1:1: bill: unknown key (known: version, billing, migration)"},
      {"version: 2\n", "e.yaml:1:10: version: only version 1 is known"},
      {"billing:\n  bundle: \"\"\n", "e.yaml:2:11: billing.bundle: expected a non-empty name"},
      {"billing:\n  labels: [a, b]\n", "e.yaml:2:11: billing.labels: expected a mapping"},
      {"billing:\n  labels: {\"a b\": c}\n", "e.yaml:2:12: billing.labels.a b: label names are"},
      {"billing:\n  labels: {a: [1]}\n", "e.yaml:2:15: billing.labels.a: expected a scalar value"},
      {"billing: [\n", "e.yaml:2:1"},
      {"- a\n", "e.yaml:1:1: expected a mapping at the top level"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto r = parse_bundle_billing(c.text, "e.yaml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == envrun::ErrorKind::Config);
    CHECK_THAT(r.error().message, Catch::Contains(c.message));
  }
}

TEST_CASE("envrun.yaml: a duplicate label is refused") {
  auto r = parse_bundle_billing("billing:\n  labels:\n    a: 1\n    a: 2\n", "e.yaml");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("billing.labels.a: duplicate label"));
}
