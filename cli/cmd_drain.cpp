// envrun drain HOST:PORT --psk-file F [--to PEER] [--dry-run]: asks an agent (`envrun
// serve`) to move every container it runs to its policy's peer or to --to (agent/drain.hpp),
// and prints its progress. Exit 0 when the host is empty of running containers; 1 when
// any stayed or failed to move (each is named; it keeps running there).
#include <cstdio>

#include "cli/cli.hpp"
#include "cli/duration.hpp"
#include "ha/channel.hpp"
#include "ha/net.hpp"
#include "ha/psk.hpp"

namespace envrun::cli {

namespace {

struct DrainFlags {
  std::string agent;
  std::string psk_file;
  std::string to;
  std::string timeout = "30s";
  bool dry_run = false;
};

void print_plan(const nlohmann::json& j, bool dry) {
  for (const auto& m : j.value("moves", nlohmann::json::array()))
    std::printf("%s: %s %s\n", m.value("id", "").c_str(), dry ? "would move to" : "to move to", m.value("to", "").c_str());
  for (const auto& s : j.value("stays", nlohmann::json::array()))
    std::printf("%s: stays: %s\n", s.value("id", "").c_str(), s.value("reason", "").c_str());
  std::fflush(stdout);
}

Result<int> run_drain(const DrainFlags& f) {
  auto agent = ENVRUN_TRY(ha::parse_endpoint(f.agent));
  if (!f.to.empty()) ENVRUN_CHECK(ha::parse_endpoint(f.to));
  auto psk = ENVRUN_TRY(ha::load_psk(f.psk_file));
  long ms = parse_duration_ms(f.timeout);
  if (ms <= 0) return Error::make(ErrorKind::Usage, "--timeout \"" + f.timeout + "\": want a duration like 30s");
  auto sock = ENVRUN_TRY(ha::connect_to(agent, int(ms)));
  ha::ChannelOptions co;
  co.timeout_ms = int(ms);
  co.peer = agent.text;
  auto ch = ENVRUN_TRY(ha::Channel::client(std::move(sock), psk, co));
  ENVRUN_CHECK(ch.recv_json(ha::FrameType::Welcome));
  nlohmann::json begin = {{"op", "drain"}, {"dry_run", f.dry_run}};
  if (!f.to.empty()) begin["to"] = f.to;
  ENVRUN_CHECK(ch.send_json(ha::FrameType::Begin, begin));
  std::vector<std::string> left;
  for (;;) {
    auto m = ENVRUN_TRY(ch.recv_next(1u << 20));
    if (m.type == ha::FrameType::Busy) continue;
    auto j = ENVRUN_TRY(m.json());
    if (m.type == ha::FrameType::DrainPlan) {
      print_plan(j, f.dry_run);
      for (const auto& s : j.value("stays", nlohmann::json::array())) left.push_back(s.value("id", ""));
    } else if (m.type == ha::FrameType::DrainProgress) {
      std::printf("%s\n", j.value("line", "").c_str());
    } else if (m.type == ha::FrameType::DrainResult) {
      std::string id = j.value("id", ""), msg = j.value("message", "");
      if (j.value("ok", false)) {
        std::printf("%s: %s\n", id.c_str(), msg.c_str());
      } else {
        std::printf("%s: not moved: %s; it keeps running on %s\n", id.c_str(), msg.c_str(), f.agent.c_str());
        left.push_back(id);
      }
    } else if (m.type == ha::FrameType::DrainDone) {
      break;
    } else {
      return Error::make(ErrorKind::Generic, f.agent + ": unexpected " + ha::frame_type_name(m.type) + " message");
    }
    std::fflush(stdout);
  }
  if (f.dry_run || left.empty()) return 0;
  std::string names;
  for (const auto& id : left) names += (names.empty() ? "" : ", ") + id;
  return Error::make(ErrorKind::Generic, std::to_string(left.size()) + " container(s) still run on " + f.agent + ": " + names);
}

}  // namespace

void add_drain(CLI::App& app, Globals& g) {
  static DrainFlags f;
  auto* d = app.add_subcommand("drain", "move every container of an agent (envrun serve) to other hosts");
  d->add_option("agent", f.agent, "the agent's ADDR:PORT")->required();
  d->add_option("--psk-file", f.psk_file, "pre-shared key file (the agent's)")->required();
  d->add_option("--to", f.to, "move every container to this agent (default: each one's envrun.yaml migration.peer)");
  d->add_flag("--dry-run", f.dry_run, "list what would move and what would stay; move nothing");
  d->add_option("--timeout", f.timeout, "longest wait for the agent between two messages")->capture_default_str();
  on_run(d, g, "drain", &f.agent, [] { return run_drain(f); });
}

}  // namespace envrun::cli
