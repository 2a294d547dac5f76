// envrun migrate ID --to HOST:PORT: pre-copy rounds, then stop-and-copy to an `envrun
// serve` agent, with rollback (ha/migrate_source.hpp, ha/precopy.hpp). The checkpoints
// and a rollback's restore are envrun's own commands, run as child processes.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>

#include "cli/cli.hpp"
#include "cli/duration.hpp"
#include "cli/migrate_hooks.hpp"
#include "cli/migrate_report.hpp"
#include "ckpt/lazy_remote.hpp"
#include "ha/migrate_source.hpp"
#include "ha/psk.hpp"
#include "ha/subprocess.hpp"
#include "kernel/fd.hpp"
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
  bool progress = false, no_progress = false;  // default: when standard error is a terminal
  bool no_precopy = false;
  uint32_t max_rounds = 8;
  std::string max_downtime = "100ms";
  bool no_lazy_pages = false;
  bool lazy = false;  // post-copy
  MigrateHooks hooks;  // --before-stop, --before-restore, --on-rollback
};

class CliSourceHost : public ha::SourceHost {
 public:
  CliSourceHost(const Globals& g, const MigrateFlags& f, std::string bundle, MigrateHooks& hooks)
      : g_(g), f_(f), bundle_(std::move(bundle)), hooks_(hooks) {}

  // The stream goes to fd 3; --image-path names the round's directory here, which parent
  // paths are relative to; --stats to a pipe on fd 1 (a few hundred bytes: the pipe holds them).
  Result<void> start_checkpoint(int stream_fd, const ha::CheckpointSpec& spec) override {
    if (!spec.leave_running) ENVRUN_CHECK(hooks_.run_before_stop());  // the final round stops the app
    auto argv = envrun({"checkpoint", f_.id, "--stream", "3", "--image-path", spec.image_dir, "--stats"});
    if (!spec.parent.empty()) argv.insert(argv.end(), {"--parent-path", spec.parent});
    if (spec.leave_running) argv.insert(argv.end(), {"--leave-running", "--track-mem", "--parent-stub"});
    std::vector<std::pair<int, int>> fds;
    UniqueFd hold_r;
    if (spec.hold) {  // the final round: the stopped tree waits for release_held()
      int h[2];
      if (::pipe2(h, O_CLOEXEC) < 0) return Error::sys("pipe");
      hold_r.reset(h[0]), hold_w_.reset(h[1]);
      argv.insert(argv.end(), {"--hold-fd", "4"});
    }
    if (f_.tcp_established) argv.push_back("--tcp-established");
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return Error::sys("pipe");
    stats_r_.reset(p[0]);
    UniqueFd stats_w(p[1]);
    fds = {{stream_fd, 3}, {stats_w.get(), 1}};
    if (hold_r) fds.push_back({hold_r.get(), 4});
    child_.emplace(ENVRUN_TRY(ha::Child::spawn({argv, fds})));
    return ok();
  }
  Result<void> release_held(bool kill) override {
    if (!hold_w_) return Error::make(ErrorKind::Generic, "checkpoint: no tree is held");
    char c = kill ? 'k' : 'r';
    ssize_t n = ::write(hold_w_.get(), &c, 1);  // SIGPIPE is ignored: a checkpoint that is gone gives EPIPE
    int err = errno;
    hold_w_.reset();
    if (n != 1) return Error::make(ErrorKind::Generic, std::string("checkpoint: the held tree cannot be ") +
                                                           (kill ? "killed" : "let go") + ": " + std::strerror(err));
    return ok();
  }
  // The checkpoint prints "image whole" before it ends the stream; without it the stream
  // ended because the checkpoint exited (failed).
  Result<void> image_whole() override {
    char buf[4096];
    for (ssize_t n; stats_.find("image whole\n") == std::string::npos;) {
      while ((n = ::read(stats_r_.get(), buf, sizeof buf)) < 0 && errno == EINTR) {}
      if (n <= 0) return Error::make(ErrorKind::Generic, "checkpoint: its stream ended before the image was whole");
      stats_.append(buf, size_t(n));
    }
    return ok();
  }
  Result<ha::CheckpointStats> finish_checkpoint() override {
    int status = ENVRUN_TRY(child_->wait());
    std::string out = std::move(stats_);
    stats_.clear();
    char buf[4096];
    ::fcntl(stats_r_.get(), F_SETFL, O_NONBLOCK);
    for (ssize_t n; (n = ::read(stats_r_.get(), buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
    stats_r_.reset();
    if (status != 0) return Error::make(ErrorKind::Generic, "checkpoint: " + child_->failure_text(status));
    return ha::parse_dump_stats(out);
  }
  bool container_running() override {
    auto st = g_.store().load(f_.id);
    return st && g_.store().status(*st) == runtime::Status::Running;
  }
  void rolled_back() override {
    // The held tree runs again with its sockets out of repair mode; --on-rollback brings
    // the addresses back.
    if (auto undo = hooks_.run_on_rollback(); !undo) log::warn("migrate " + f_.id + ": " + undo.error().message);
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
  UniqueFd stats_r_, hold_w_;
  std::string stats_;  // read from stats_r_ before the checkpoint ended
  MigrateHooks& hooks_;
};

Result<int> run_migrate(const Globals& g, const MigrateFlags& f) {
  ::signal(SIGPIPE, SIG_IGN);  // a pipe to a checkpoint that is gone: EPIPE
  ha::MigrateOptions o;
  o.id = f.id;
  o.target = ENVRUN_TRY(ha::parse_endpoint(f.to));
  o.psk = ENVRUN_TRY(ha::load_psk(f.psk_file));
  long ms = parse_duration_ms(f.timeout);
  if (ms <= 0) return Error::make(ErrorKind::Usage, "--timeout \"" + f.timeout + "\": want a duration like 30s");
  o.timeout_ms = int(ms);
  long budget = parse_duration_ms(f.max_downtime);
  if (budget < 0) return Error::make(ErrorKind::Usage, "--max-downtime \"" + f.max_downtime + "\": want a duration like 100ms");
  o.precopy.enabled = !f.no_precopy;
  o.precopy.max_rounds = f.max_rounds;
  o.precopy.max_downtime_us = uint64_t(budget) * 1000;
  o.lazy_pages = !f.no_lazy_pages;
  if (f.lazy) {  // post-copy: no pre-copy; the pages follow the app (ckpt/lazy_remote.hpp)
    o.precopy.enabled = false;
    o.postcopy = true;
    o.postcopy_holes = [](int fd, const std::string& name) -> Result<std::vector<ha::Hole>> {
      std::vector<ha::Hole> out;
      for (const auto& r : ENVRUN_TRY(ckpt::lazy_holes(fd, name))) out.push_back({r.off, r.len});
      return out;
    };
  }
  auto store = g.store();
  auto st = ENVRUN_TRY(store.load(f.id));
  if (store.status(st) != runtime::Status::Running)
    return Error::make(ErrorKind::State, std::string("container is ") + runtime::status_name(store.status(st)) + ", not running");
  o.bundle_dir = st.bundle;
  std::string tmpl = fs::join(f.work_dir, "envrun-migrate-" + f.id + ".XXXXXX");
  if (!::mkdtemp(tmpl.data())) return Error::sys("--work-dir " + f.work_dir);
  o.work_dir = tmpl;
  bool progress = f.progress || (!f.no_progress && ::isatty(STDERR_FILENO));
  o.note = [t0 = std::chrono::steady_clock::now(), progress, id = f.id](const std::string& s) {
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    char at[32];
    std::snprintf(at, sizeof at, "%.1f ms: ", ms);
    log::debug("migrate: " + std::string(at) + s);
    if (progress) std::fprintf(stderr, "envrun: migrate %s: %.1f s: %s\n", id.c_str(), ms / 1000, s.c_str());
  };
  MigrateHooks hooks = f.hooks;
  hooks.set_context(f.id, f.to);
  o.before_restore = [&hooks]() { return hooks.run_before_restore(); };
  CliSourceHost host(g, f, st.bundle, hooks);
  auto r = ha::migrate(o, host);
  if (!r && hooks.undo_due() && host.container_running())  // the app never stopped: undo the hooks
    if (auto undo = hooks.run_on_rollback(); !undo)
      return Error::make(ErrorKind::Generic, r.error().message + "; " + undo.error().message);
  if (!r) return std::move(r).error();
  print_migrate_report({f.id, f.to, o.precopy.max_downtime_us}, *r, f.json);
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
  auto* prog = m->add_flag("--progress", f.progress, "print each step (rounds, restore, commit) on standard error as it "
                                                      "ends (the default when standard error is a terminal)");
  m->add_flag("--no-progress", f.no_progress, "do not print the steps")->excludes(prog);
  m->add_flag("--no-precopy", f.no_precopy, "stop-and-copy only: no memory rounds while the app runs");
  m->add_option("--max-rounds", f.max_rounds, "pre-copy rounds at most before the final one")->capture_default_str();
  m->add_option("--max-downtime", f.max_downtime, "downtime budget: pre-copy ends once the predicted final round fits")
      ->capture_default_str();
  m->add_flag("--lazy", f.lazy,
              "post-copy: no pre-copy; the app runs on the target once all but its private anonymous memory is there, "
              "whose pages the target fetches from here after (faults first); a break after that: rolled back here");
  m->add_flag("--no-lazy-pages", f.no_lazy_pages,
              "after pre-copy, the target restores all memory before the app runs (default: the app runs at once "
              "and a page server fills its memory from the rounds there, when the target's envrun has restore --lazy-pages)");
  m->add_option("--before-stop", f.hooks.before_stop, "shell command run here right before the app is stopped")
      ->type_name("CMD");
  m->add_option("--before-restore", f.hooks.before_restore, "shell command run here before the target restores")
      ->type_name("CMD");
  m->add_option("--on-rollback", f.hooks.on_rollback, "shell command run here when a migration that ran a hook fails")
      ->type_name("CMD");
  on_run(m, g, "migrate", &f.id, [&g]() -> Result<int> { return run_migrate(g, f); });
}

}  // namespace envrun::cli
