// envrun migrate ID --to HOST:PORT: stop-and-copy to an `envrun serve` agent, with
// rollback (ha/migrate_source.hpp). The checkpoint and a rollback's restore are envrun's
// own commands, run as child processes.
#include <stdlib.h>

#include <cstdio>
#include <optional>

#include "cli/cli.hpp"
#include "cli/duration.hpp"
#include "ha/migrate_source.hpp"
#include "ha/psk.hpp"
#include "ha/subprocess.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"

namespace envrun::cli {

namespace {

struct MigrateFlags {
  std::string id;
  std::string to;
  std::string psk_file;
  bool tcp_established = false;
  std::string timeout = "30s";
  std::string work_dir = "/var/tmp";
  bool json = false;
};

class CliSourceHost : public ha::SourceHost {
 public:
  CliSourceHost(const Globals& g, const MigrateFlags& f, std::string bundle) : g_(g), f_(f), bundle_(std::move(bundle)) {}

  Result<void> start_checkpoint(int stream_fd) override {
    auto argv = envrun({"checkpoint", f_.id, "--stream", "3"});
    if (f_.tcp_established) argv.push_back("--tcp-established");
    child_.emplace(ENVRUN_TRY(ha::Child::spawn({argv, {{stream_fd, 3}}})));
    return ok();
  }
  Result<void> finish_checkpoint() override {
    int status = ENVRUN_TRY(child_->wait());
    if (status != 0) return Error::make(ErrorKind::Generic, "checkpoint: " + child_->failure_text(status));
    return ok();
  }
  bool container_running() override {
    auto st = g_.store().load(f_.id);
    return st && g_.store().status(*st) == runtime::Status::Running;
  }
  Result<void> restore_local(const std::string& image_dir) override {
    auto c = ENVRUN_TRY(ha::Child::spawn({envrun({"restore", f_.id, "-b", bundle_, "--image-path", image_dir, "-d"}), {}}));
    int status = ENVRUN_TRY(c.wait());
    if (status != 0) return Error::make(ErrorKind::Generic, "restore: " + c.failure_text(status));
    return ok();
  }

 private:
  std::vector<std::string> envrun(std::initializer_list<std::string> args) const {
    std::vector<std::string> a{ha::self_exe(), "--root", g_.root};
    if (!g_.log_file.empty()) a.insert(a.end(), {"--log", g_.log_file, "--log-format", g_.log_format});
    if (g_.debug) a.push_back("--debug");
    a.insert(a.end(), args);
    return a;
  }
  const Globals& g_;
  const MigrateFlags& f_;
  std::string bundle_;
  std::optional<ha::Child> child_;
};

void print_report(const MigrateFlags& f, const ha::MigrateReport& r) {
  uint64_t files = r.prefetch.blobs_sent + r.final_sync.blobs_sent;
  uint64_t bytes = r.prefetch.bytes_sent + r.final_sync.bytes_sent;
  if (f.json) {
    nlohmann::json j = {{"id", f.id}, {"to", f.to}, {"target_pid", r.target_pid}, {"total_ms", r.total_us / 1000.0},
                        {"downtime_ms", r.downtime_us / 1000.0}, {"rounds", r.rounds},
                        {"bundle", {{"files", r.final_sync.files}, {"files_sent", files}, {"bytes_sent", bytes},
                                    {"prefetch", {{"files_sent", r.prefetch.blobs_sent}, {"bytes_sent", r.prefetch.bytes_sent}}},
                                    {"final", {{"files_sent", r.final_sync.blobs_sent}, {"bytes_sent", r.final_sync.bytes_sent}}}}},
                        {"image_bytes", r.image_bytes}, {"wire_bytes_sent", r.wire_sent}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("migrated %s to %s (pid %lld there)\n", f.id.c_str(), f.to.c_str(), (long long)r.target_pid);
  std::printf("  total time:         %10.1f ms\n", r.total_us / 1000.0);
  std::printf("  downtime:           %10.1f ms\n", r.downtime_us / 1000.0);
  std::printf("  memory rounds:      %10u\n", r.rounds);
  std::printf("  bundle files:       %10llu (%llu sent, %llu bytes)\n", (unsigned long long)r.final_sync.files,
              (unsigned long long)files, (unsigned long long)bytes);
  std::printf("  image bytes:        %10llu\n", (unsigned long long)r.image_bytes);
  std::printf("  bytes on the wire:  %10llu\n", (unsigned long long)r.wire_sent);
}

Result<int> run_migrate(const Globals& g, const MigrateFlags& f) {
  ha::MigrateOptions o;
  o.id = f.id;
  o.target = ENVRUN_TRY(ha::parse_endpoint(f.to));
  o.psk = ENVRUN_TRY(ha::load_psk(f.psk_file));
  long ms = parse_duration_ms(f.timeout);
  if (ms <= 0) return Error::make(ErrorKind::Usage, "--timeout \"" + f.timeout + "\": want a duration like 30s");
  o.timeout_ms = int(ms);
  auto store = g.store();
  auto st = ENVRUN_TRY(store.load(f.id));
  if (store.status(st) != runtime::Status::Running)
    return Error::make(ErrorKind::State, std::string("container is ") + runtime::status_name(store.status(st)) + ", not running");
  o.bundle_dir = st.bundle;
  std::string tmpl = fs::join(f.work_dir, "envrun-migrate-" + f.id + ".XXXXXX");
  if (!::mkdtemp(tmpl.data())) return Error::sys("--work-dir " + f.work_dir);
  o.work_dir = tmpl;
  o.note = [](const std::string& s) { log::debug("migrate: " + s); };
  CliSourceHost host(g, f, st.bundle);
  auto r = ENVRUN_TRY(ha::migrate(o, host));
  print_report(f, r);
  return 0;
}

}  // namespace

void add_migrate(CLI::App& app, Globals& g) {
  static MigrateFlags f;
  auto* m = app.add_subcommand("migrate", "move a running container to another host's agent (envrun serve)");
  m->add_option("id", f.id, "container id")->required();
  m->add_option("--to", f.to, "the agent's ADDR:PORT")->required();
  m->add_option("--psk-file", f.psk_file, "pre-shared key file (the agent's)")->required();
  m->add_flag("--tcp-established", f.tcp_established, "carry established TCP connections (TCP_REPAIR)");
  m->add_option("--timeout", f.timeout, "longest wait for the agent")->capture_default_str();
  m->add_option("--work-dir", f.work_dir, "where the rollback copy of the image is kept meanwhile")->capture_default_str();
  m->add_flag("--json", f.json, "print the report as one JSON object");
  on_run(m, g, "migrate", &f.id, [&g]() -> Result<int> { return run_migrate(g, f); });
}

}  // namespace envrun::cli
