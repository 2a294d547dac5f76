// BUNDLE/envrun.yaml `migration:` (bundle/migration_policy.hpp): what is accepted, the
// defaults, and errors that name file, line, column, field and reason; and the agent's
// pressure readings (agent/policy_sample.hpp) from cgroup file texts, the drain and SIGTERM
// plans (agent/drain_plan.hpp) and the thresholds (agent/policy_watch.hpp).
#include <catch2/catch.hpp>

#include "agent/drain_plan.hpp"
#include "agent/policy_sample.hpp"
#include "agent/policy_watch.hpp"
#include "billing/bundle_billing.hpp"
#include "bundle/migration_policy.hpp"

using envrun::bundle::MigrationEvent;
using envrun::bundle::parse_migration_policy;

TEST_CASE("migration: every field") {
  auto r = parse_migration_policy(
      "version: 1\n"
      "billing:\n  bundle: shop\n"
      "migration:\n"
      "  peer: 10.0.0.2:7070\n"
      "  psk_file: keys/peer.psk\n"
      "  on: [drain, sigterm, memory_pressure, cpu_pressure]\n"
      "  memory_pressure_above: 80%\n"
      "  memory_psi_above: 12.5\n"
      "  cpu_pressure_above: 50%\n"
      "  for: 2s\n"
      "  retry_after: 1m\n"
      "  tcp_established: true\n",
      "e.yaml", "/b");
  REQUIRE(r.ok());
  CHECK(r->present);
  CHECK(r->peer == "10.0.0.2:7070");
  CHECK(r->psk_file == "/b/keys/peer.psk");
  CHECK(r->has(MigrationEvent::Drain));
  CHECK(r->has(MigrationEvent::Sigterm));
  CHECK(r->has(MigrationEvent::MemoryPressure));
  CHECK(r->has(MigrationEvent::CpuPressure));
  CHECK(*r->memory_above == 80);
  CHECK(*r->memory_psi_above == 12.5);
  CHECK(*r->cpu_psi_above == 50);
  CHECK(r->for_ms == 2000);
  CHECK(r->retry_ms == 60000);
  CHECK(r->tcp_established);
}

TEST_CASE("migration: defaults, and files without the section") {
  for (const char* peer : {"host-b.example:7070", "localhost:1", "10.0.0.2:7070", "'[fe80::1]:7'"}) {
    INFO(peer);
    CHECK(parse_migration_policy(std::string("migration:\n  peer: ") + peer + "\n", "e.yaml", "/b").ok());
  }
  auto r = parse_migration_policy("migration:\n  peer: '[::1]:9000'\n", "e.yaml", "/b");
  REQUIRE(r.ok());
  CHECK(r->present);
  CHECK(r->on == unsigned(MigrationEvent::Drain));
  CHECK(r->for_ms == 10000);
  CHECK(r->retry_ms == 60000);
  CHECK_FALSE(r->tcp_established);
  CHECK(r->psk_file.empty());
  for (const char* text : {"", "version: 1\n", "billing:\n  bundle: x\n"}) {
    auto n = parse_migration_policy(text, "e.yaml", "/b");
    REQUIRE(n.ok());
    CHECK_FALSE(n->present);
  }
  auto abs = parse_migration_policy("migration:\n  psk_file: /etc/k\n", "e.yaml", "/b");
  REQUIRE(abs.ok());
  CHECK(abs->psk_file == "/etc/k");
  CHECK(abs->peer.empty());  // drain --to may give one
}

TEST_CASE("migration: errors name file, line, column, field and reason") {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"migration: [a]\n", "e.yaml:1:12: migration: expected a mapping (peer, psk_file, on,"},
      {"migration:\n  per: 1.2.3.4:5\n", "e.yaml:2:3: migration.per: unknown key (known: peer, psk_file, on,"},
      {"migration:\n  peer: 1.2.3.4\n", "e.yaml:2:9: migration.peer: no port (want ADDR:PORT)"},
      {"migration:\n  peer: host_b:7\n", "e.yaml:2:9: migration.peer: \"host_b\" is neither a host name nor a numeric"},
      {"migration:\n  peer: -b.example:7\n", "e.yaml:2:9: migration.peer: \"-b.example\" is neither"},
      {"migration:\n  peer: a..b:7\n", "e.yaml:2:9: migration.peer: \"a..b\" is neither"},
      {"migration:\n  peer: 1.2.3.4:70000\n", "e.yaml:2:9: migration.peer: port must be 1..65535"},
      {"migration:\n  peer: 1.2.3.4:1\n  on: drain\n", "e.yaml:3:7: migration.on: expected a list of events"},
      {"migration:\n  peer: 1.2.3.4:1\n  on: [drain, reboot]\n", "e.yaml:3:15: migration.on: unknown event \"reboot\""},
      {"migration:\n  peer: 1.2.3.4:1\n  on: [drain, drain]\n", "e.yaml:3:15: migration.on: \"drain\" is listed twice"},
      {"migration:\n  peer: 1.2.3.4:1\n  on: [memory_pressure]\n",
       "e.yaml:3:7: migration.on: memory_pressure needs memory_pressure_above or memory_psi_above"},
      {"migration:\n  peer: 1.2.3.4:1\n  memory_pressure_above: 80%\n",
       "e.yaml:3:26: migration.memory_pressure_above: set, but memory_pressure is not in migration.on"},
      {"migration:\n  peer: 1.2.3.4:1\n  on: [cpu_pressure]\n", "e.yaml:3:7: migration.on: cpu_pressure needs cpu_pressure_above"},
      {"migration:\n  on: [sigterm]\n", "e.yaml:2:7: migration.peer: required by the events sigterm"},
      {"migration:\n  peer: 1.2.3.4:1\n  on: [memory_pressure]\n  memory_pressure_above: 120%\n",
       "e.yaml:4:26: migration.memory_pressure_above: expected a percentage above 0 and at most 100"},
      {"migration:\n  peer: 1.2.3.4:1\n  on: [memory_pressure]\n  memory_pressure_above: 0%\n",
       "e.yaml:4:26: migration.memory_pressure_above: expected a percentage"},
      {"migration:\n  for: 10\n", "e.yaml:2:8: migration.for: expected a duration like 10s"},
      {"migration:\n  for: 2h\n", "e.yaml:2:8: migration.for: at most 3600s"},
      {"migration:\n  retry_after: 100ms\n", "e.yaml:2:16: migration.retry_after: at least 1s"},
      {"migration:\n  tcp_established: yes\n", "e.yaml:2:20: migration.tcp_established: expected true or false"},
      {"migration:\n  psk_file: \"\"\n", "e.yaml:2:13: migration.psk_file: expected the path"},
      {"migration: {peer: [\n", "e.yaml:2:1"},
  };
  for (const auto& c : cases) {
    auto r = parse_migration_policy(c.text, "e.yaml", "/b");
    INFO(c.text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == envrun::ErrorKind::Config);
    CHECK_THAT(r.error().message, Catch::StartsWith(c.message));
  }
}

TEST_CASE("migration: the billing parser accepts the section and the other way round") {
  const char* text = "billing:\n  bundle: shop\nmigration:\n  peer: 127.0.0.1:7070\n";
  auto b = envrun::billing::parse_bundle_billing(text, "e.yaml");
  REQUIRE(b.ok());
  CHECK(b->bundle == "shop");
  auto m = parse_migration_policy(text, "e.yaml", "/b");
  REQUIRE(m.ok());
  CHECK(m->peer == "127.0.0.1:7070");
}

TEST_CASE("migration: percent and duration parsing") {
  using envrun::bundle::parse_duration;
  using envrun::bundle::parse_percent;
  CHECK(*parse_percent("80%") == 80);
  CHECK(*parse_percent("100") == 100);
  CHECK(*parse_percent(".5%") == 0.5);
  for (const char* bad : {"", "%", "0", "-5%", "101%", "80%%", "abc", "nan", "1e3"}) CHECK_FALSE(parse_percent(bad));
  CHECK(*parse_duration("10s") == 10000);
  CHECK(*parse_duration("500ms") == 500);
  CHECK(*parse_duration("2m") == 120000);
  CHECK(*parse_duration("1h") == 3600000);
  CHECK(*parse_duration("0s") == 0);
  for (const char* bad : {"", "10", "s", "-1s", "10x", "inf s"}) CHECK_FALSE(parse_duration(bad));
}

TEST_CASE("pressure: PSI some avg10 and the memory in use") {
  using namespace envrun::agent;
  auto psi = parse_psi_some_avg10("some avg10=12.34 avg60=1.00 avg300=0.10 total=12345\nfull avg10=3.00 avg60=0 avg300=0 total=1\n");
  REQUIRE(psi);
  CHECK(*psi == Approx(12.34));
  CHECK_FALSE(parse_psi_some_avg10("full avg10=3.00 avg60=0 avg300=0 total=1\n"));
  CHECK_FALSE(parse_psi_some_avg10("some avg60=1.00\n"));
  // v1: usage minus the inactive file cache, against the limit; no limit -> nothing.
  auto m = memory_use_percent(96ull << 20, "cache 1\ntotal_inactive_file 32768\ninactive_file 1\n", 128ull << 20, "total_inactive_file");
  REQUIRE(m);
  CHECK(*m == Approx(100.0 * ((96ull << 20) - 32768) / (128ull << 20)));
  CHECK_FALSE(memory_use_percent(1 << 20, "", ~0ull, "total_inactive_file"));
  CHECK_FALSE(memory_use_percent(1 << 20, "", 0x7FFFFFFFFFFFF000ull, "total_inactive_file"));
  auto v2 = memory_use_percent(50, "inactive_file 100\n", 1000, "inactive_file");  // cache above usage: 0
  REQUIRE(v2);
  CHECK(*v2 == 0);
}

namespace {

envrun::agent::Candidate cand(const char* id, const char* status, const char* yaml) {
  envrun::agent::Candidate c{id, std::string("/b/") + id, "/cg/" + std::string(id), status, {}, {}};
  auto p = parse_migration_policy(yaml, "e.yaml", c.bundle);
  if (p) c.policy = *p;
  else c.policy_error = p.error().message;
  return c;
}

}  // namespace

TEST_CASE("drain plan: who moves where, who stays and why") {
  using namespace envrun::agent;
  std::vector<Candidate> cs = {
      cand("a", "running", "migration:\n  peer: 10.0.0.2:1\n  psk_file: k\n  tcp_established: true\n"),
      cand("b", "running", ""),
      cand("c", "paused", "migration:\n  peer: 10.0.0.2:1\n"),
      cand("d", "running", "migration:\n  peer: 10.0.0.2:1\n  on: [sigterm]\n"),
      cand("e", "running", "migration:\n  bogus: 1\n"),
  };
  auto p = plan_drain(cs, "", "/agent.psk");
  REQUIRE(p.moves.size() == 1);
  CHECK(p.moves[0].id == "a");
  CHECK(p.moves[0].to == "10.0.0.2:1");
  CHECK(p.moves[0].psk_file == "/b/a/k");
  CHECK(p.moves[0].tcp_established);
  REQUIRE(p.stays.size() == 4);
  CHECK(p.stays[0].id == "b");
  CHECK_THAT(p.stays[0].reason, Catch::Contains("no peer"));
  CHECK_THAT(p.stays[1].reason, Catch::Contains("paused"));
  CHECK_THAT(p.stays[2].reason, Catch::Contains("does not list drain"));
  CHECK_THAT(p.stays[3].reason, Catch::Contains("migration.bogus: unknown key"));
  // --to: every running container with drain moves there, with the agent's key.
  auto to = plan_drain(cs, "10.0.0.9:7", "/agent.psk");
  REQUIRE(to.moves.size() == 2);
  CHECK(to.moves[1].id == "b");
  CHECK(to.moves[1].to == "10.0.0.9:7");
  CHECK(to.moves[1].psk_file == "/agent.psk");
  CHECK(to.stays.size() == 3);
  // SIGTERM: only the policies with sigterm.
  auto t = plan_sigterm(cs, "/agent.psk");
  REQUIRE(t.moves.size() == 1);
  CHECK(t.moves[0].id == "d");
  CHECK(t.moves[0].psk_file == "/agent.psk");
  CHECK(t.stays.empty());
}

TEST_CASE("policy: which readings are over the thresholds") {
  using namespace envrun::agent;
  auto p = *parse_migration_policy(
      "migration:\n  peer: 1.2.3.4:5\n  on: [memory_pressure, cpu_pressure]\n"
      "  memory_pressure_above: 50%\n  cpu_pressure_above: 20%\n",
      "e.yaml", "/b");
  PressureReading r;
  CHECK(over_threshold(p, r).empty());  // nothing read: nothing fires
  r.memory_percent = 49.9, r.memory_limit = 128ull << 20, r.cpu_psi = 20.0, r.memory_psi = 99;
  CHECK(over_threshold(p, r).empty());  // at or below; memory PSI has no threshold here
  r.memory_percent = 69;
  CHECK(over_threshold(p, r) == "memory in use 69.0% of its 128 MiB limit (above 50.0%)");
  r.cpu_psi = 35.5;
  CHECK_THAT(over_threshold(p, r), Catch::EndsWith(", cpu pressure 35.5% (PSI some avg10, above 20.0%)"));
  auto drain_only = *parse_migration_policy("migration:\n  peer: 1.2.3.4:5\n", "e.yaml", "/b");
  CHECK(over_threshold(drain_only, r).empty());
}
