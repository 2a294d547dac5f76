// envrun serve: the agent that receives migrations (agent/server.hpp). --root is the
// agent's own directory (agent/agent_root.hpp); its containers live in ROOT/state.
#include <cstdio>

#include "agent/server.hpp"
#include "cli/cli.hpp"
#include "cli/duration.hpp"
#include "cli/remote_helper.hpp"
#include "cli/size_arg.hpp"
#include "ha/psk.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"

namespace envrun::cli {

namespace {

constexpr const char* kDefaultAgentRoot = "/var/lib/envrun/agent";

struct ServeFlags {
  std::string listen;
  std::string psk_file;
  std::string image_dir;  // --image-dir: images outside the root (a tmpfs)
  std::string max_bundle = "8G", max_image = "64G", max_frame = "1M";
  std::string timeout = "30s";
  ApiFlags api;  // the management API (cli/remote_helper.hpp)
  std::string sigterm_timeout = "5m";
};

std::vector<std::string> child_globals(const Globals& g) {
  std::vector<std::string> a;
  if (!g.log_file.empty()) a.insert(a.end(), {"--log", g.log_file, "--log-format", g.log_format});
  if (g.debug) a.push_back("--debug");
  return a;
}

Result<uint64_t> size_flag(const std::string& name, const std::string& v) {
  uint64_t n = parse_size(v);
  if (n == 0) return Error::make(ErrorKind::Usage, name + " \"" + v + "\": want a size like 512M or 8G");
  return n;
}

Result<int> run_serve(const Globals& g, const ServeFlags& f, bool root_given) {
  std::string dir = root_given ? g.root : kDefaultAgentRoot;
  if (f.listen.empty() || f.api.list_routes) return exec_api_serve(g, f.api, dir);  // the API alone
  auto api = ENVRUN_TRY(start_api_serve(g, f.api, dir));
  agent::ServeOptions o;
  o.listen = ENVRUN_TRY(ha::parse_endpoint(f.listen));
  auto& c = o.cfg;
  c.root.dir = root_given ? g.root : kDefaultAgentRoot;
  if (!f.image_dir.empty()) {
    if (f.image_dir[0] != '/') return Error::make(ErrorKind::Usage, "--image-dir \"" + f.image_dir + "\": not an absolute path");
    c.root.image_root = fs::normalize(f.image_dir);
  }
  c.psk = ENVRUN_TRY(ha::load_psk(f.psk_file));
  c.limits.max_bundle_bytes = ENVRUN_TRY(size_flag("--max-bundle-bytes", f.max_bundle));
  c.limits.max_image_bytes = ENVRUN_TRY(size_flag("--max-image-bytes", f.max_image));
  uint64_t frame = ENVRUN_TRY(size_flag("--max-frame", f.max_frame));
  if (frame < 4096 || frame > ha::kMaxPayloadCeiling)
    return Error::make(ErrorKind::Usage, "--max-frame \"" + f.max_frame + "\": want 4K..64M");
  c.limits.max_frame = uint32_t(frame);
  long ms = parse_duration_ms(f.timeout);
  if (ms <= 0) return Error::make(ErrorKind::Usage, "--timeout \"" + f.timeout + "\": want a duration like 30s");
  c.timeout_ms = int(ms);
  c.envrun_globals = child_globals(g);
  c.log = [](const std::string& s) {
    std::fprintf(stderr, "%s envrun serve: %s\n", log::now_rfc3339().c_str(), s.c_str());
    std::fflush(stderr);
    if (log::has_file()) log::info("serve: " + s);
  };
  // Event-driven migration (agent/drain.hpp): drain, policies, SIGTERM.
  long stop_ms = parse_duration_ms(f.sigterm_timeout);
  if (stop_ms <= 0) return Error::make(ErrorKind::Usage, "--sigterm-timeout \"" + f.sigterm_timeout + "\": want a duration like 5m");
  agent::Drainer drainer({c.root, f.psk_file, c.envrun_globals, int(stop_ms), 1000, c.log, f.listen});
  c.serve_op = [&drainer](ha::Channel& ch, const nlohmann::json& begin) -> Result<std::string> {
    if (begin.value("op", std::string()) != "drain") return Error::make(ErrorKind::Generic, "begin: unknown op");
    return drainer.serve(ch, begin);
  };
  o.drain = &drainer;
  ENVRUN_CHECK(agent::serve(o));
  return 0;
}

}  // namespace

void add_serve(CLI::App& app, Globals& g) {
  static ServeFlags f;
  auto* root_opt = app.get_option("--root");
  auto* s = app.add_subcommand("serve", "the agent that receives migrations (foreground; SIGTERM stops it)");
  s->add_option("--listen", f.listen, "ADDR:PORT to receive migrations on (numeric address; none: the API alone)");
  s->add_option("--image-dir", f.image_dir,
                 "keep received images (and their staging) here instead of under the root: a tmpfs halves the cost "
                 "of storing them (its memory is used until the restore's page server has them)");
  s->add_option("--psk-file", f.psk_file, "pre-shared key file for --listen (>= 32 random bytes, mode 600)");
  add_api_flags(s, f.api);
  s->add_option("--max-bundle-bytes", f.max_bundle, "largest bundle accepted")->capture_default_str();
  s->add_option("--max-image-bytes", f.max_image, "largest checkpoint image accepted")->capture_default_str();
  s->add_option("--max-frame", f.max_frame, "largest frame payload accepted")->capture_default_str();
  s->add_option("--timeout", f.timeout, "longest wait for the peer")->capture_default_str();
  s->add_option("--sigterm-timeout", f.sigterm_timeout, "at SIGTERM, no new migration of a `sigterm` policy after this")
      ->capture_default_str();
  s->footer("--root DIR (global) is the agent's directory (default /var/lib/envrun/agent); its containers'\n"
            "state is DIR/state: envrun --root DIR/state list.");
  on_run(s, g, "serve", nullptr, [&g, root_opt]() -> Result<int> { return run_serve(g, f, root_opt->count() > 0); });
}

}  // namespace envrun::cli
