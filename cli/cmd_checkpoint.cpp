// envrun checkpoint / restore: the own checkpoint engine (ckpt/), for a container or,
// with --pid, for any process tree of the host.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>

#include "ckpt/dump.hpp"
#include "ckpt/inproc.hpp"
#include "ckpt/lazy_server.hpp"
#include "ckpt/restore.hpp"
#include "cli/cli.hpp"
#include "bundle/spec_parser.hpp"
#include "cli/metering.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/container.hpp"
#include "runtime/intercept_control.hpp"
#include "kernel/fd.hpp"
#include "kernel/fs.hpp"

namespace envrun::cli {

namespace {

constexpr const char* kImageFile = "envrun.img";

struct CheckpointFlags {
  std::string id;
  pid_t pid = 0;
  std::string image_path;
  int stream_fd = -1;
  int hold_fd = -1;
  bool parent_stub = false;
  bool leave_running = false;
  bool tcp_established = false;
  std::string compress;
  bool stats = false;
  std::string parent_path;
  bool track_mem = false;
};

struct RestoreFlags {
  std::string id;
  std::string bundle = ".";
  bool detach = false;
  std::string image_path;
  int stream_fd = -1;
  bool stats = false;
  bool lazy_pages = false;
  int page_fetch_fd = -1;  // post-copy migration: the agent's fd for the image's missing pages
};

void print_dump_stats(const ckpt::DumpStats& s) {
  std::printf("Dump statistics\n");
  std::printf("  freezing time:        %10llu us\n", (unsigned long long)s.freezing_us);
  std::printf("  frozen time:          %10llu us\n", (unsigned long long)s.frozen_us);
  std::printf("  memory dump time:     %10llu us\n", (unsigned long long)s.memdump_us);
  std::printf("  memory write time:    %10llu us\n", (unsigned long long)s.memwrite_us);
  std::printf("  processes / threads:  %10llu / %llu\n", (unsigned long long)s.processes, (unsigned long long)s.threads);
  std::printf("  pages scanned:        %10llu\n", (unsigned long long)s.pages_scanned);
  std::printf("  pages skipped (zero): %10llu\n", (unsigned long long)s.pages_skipped_zero);
  std::printf("  pages skipped (file): %10llu\n", (unsigned long long)s.pages_skipped_file);
  std::printf("  pages written:        %10llu\n", (unsigned long long)s.pages_written);
  std::printf("  image bytes:          %10llu\n", (unsigned long long)s.image_bytes);
  std::printf("  pages in parent:      %10llu\n", (unsigned long long)s.pages_in_parent);
  std::printf("  memory tracking time: %10llu us\n", (unsigned long long)s.track_us);
  if (s.live_read) std::printf("  memory read live:     %10s (pages vanished: %llu)\n", "yes", (unsigned long long)s.pages_vanished);
  std::printf("  freeze start:         %10llu us (CLOCK_MONOTONIC)\n", (unsigned long long)s.freeze_start_us);
}

// --parent-path DIR (incremental) and --track-mem. DIR is relative to --image-path, as
// with runc, and recorded as given so that the images can move together; with --stream
// and no --image-path it is taken from the working directory and recorded absolute
// (--stream with --image-path: the directory the stream is kept in, as a migration's
// rounds are on both hosts).
Result<void> set_parent(const CheckpointFlags& f, ckpt::DumpOptions& o) {
  o.track_mem = f.track_mem;
  if (f.track_mem && !f.leave_running)
    return Error::make(ErrorKind::Usage, "--track-mem needs --leave-running (a killed tree has nothing to track)");
  if (f.parent_path.empty()) return ok();
  std::string dir = f.parent_path;
  bool from_cwd = f.stream_fd >= 0 && f.image_path.empty();
  if (dir[0] != '/' && from_cwd) {
    char here[4096];
    dir = fs::join(::getcwd(here, sizeof here) ? here : ".", dir);
  } else if (dir[0] != '/') {
    dir = fs::join(f.image_path, dir);
  }
  o.parent_image = fs::join(dir, kImageFile);
  o.parent_ref = from_cwd ? dir : f.parent_path;
  return ok();
}

void print_restore_stats(const ckpt::RestoreStats& s) {
  std::printf("Restore statistics\n");
  std::printf("  image read time:      %10llu us\n", (unsigned long long)s.read_us);
  std::printf("  forking time:         %10llu us\n", (unsigned long long)s.forking_us);
  std::printf("  memory restore time:  %10llu us\n", (unsigned long long)s.memory_us);
  std::printf("  total restore time:   %10llu us\n", (unsigned long long)s.total_us);
  std::printf("  processes / threads:  %10llu / %llu\n", (unsigned long long)s.processes, (unsigned long long)s.threads);
  std::printf("  pages restored:       %10llu\n", (unsigned long long)s.pages_restored);
  if (s.lazy_pages) std::printf("  pages left lazy:      %10llu\n", (unsigned long long)s.lazy_pages);
}

// restore --lazy-pages --stats: the time until the app runs (the restore's), then, once
// the page server is done, until every page was in.
void print_lazy_stats(const ckpt::RestoreResult& r) {
  if (r.lazy_report < 0) return;
  UniqueFd fd(r.lazy_report);
  std::printf("  time until running:   %10llu us\n", (unsigned long long)r.stats.total_us);
  std::printf("  page server pid:      %10d\n", int(r.lazy_server));
  std::fflush(stdout);
  auto rep = ckpt::read_lazy_report(fd.get());
  if (!rep.ok) {
    std::printf("  lazy pages failed:    %s\n", rep.message.c_str());
    return;
  }
  std::printf("  time until all in:    %10llu us\n", (unsigned long long)(r.stats.total_us + rep.stats.all_in_us));
  std::printf("  page server time:     %10llu us\n", (unsigned long long)rep.stats.all_in_us);
  std::printf("  pages copied lazily:  %10llu\n", (unsigned long long)rep.stats.pages_copied);
  std::printf("  faults served:        %10llu (%llu with a zero page)\n", (unsigned long long)rep.stats.faults,
              (unsigned long long)rep.stats.zero_pages);
}

// The image file inside --image-path, written under a temporary name and renamed when
// complete: a failed checkpoint leaves no image that looks whole.
// The directory whose freeze file stops the container: the unified one (v2, hybrid),
// else the v1 freezer's; "" when it has neither (ptrace alone then).
Result<std::string> freezer_dir_of(const runtime::ContainerState& st) {
  if (st.cgroup_path.empty()) return std::string();
  auto m = ENVRUN_TRY(runtime::CgroupMounts::detect());
  if (!m.unified.empty()) {
    std::string d = fs::join(m.unified, st.cgroup_path);
    if (fs::exists(d + "/cgroup.freeze")) return d;
  }
  auto it = m.v1.find("freezer");
  if (it != m.v1.end()) {
    std::string d = fs::join(it->second, st.cgroup_path);
    if (fs::exists(d + "/freezer.state")) return d;
  }
  return std::string();
}

Result<int> run_checkpoint(Globals& g, const CheckpointFlags& f) {
  ckpt::DumpOptions o;
  std::optional<runtime::ContainerState> st;
  if (f.pid > 0 && !f.id.empty()) return Error::make(ErrorKind::Usage, "give a container id or --pid, not both");
  if (f.pid > 0) {
    o.root = f.pid;
    o.inventory = {{"source", "pid"}};
  } else {
    if (f.id.empty()) return Error::make(ErrorKind::Usage, "give a container id (or --pid PID for a host process tree)");
    auto store = g.store();
    st = ENVRUN_TRY(store.load(f.id));
    auto status = store.status(*st);
    if (status != runtime::Status::Running)
      return Error::make(ErrorKind::State, std::string("container is ") + runtime::status_name(status) + ", not running");
    o.root = st->pid;
    o.freezer_dir = ENVRUN_TRY(freezer_dir_of(*st));
    o.inventory = {{"source", "container"}, {"container_id", st->id}, {"bundle", st->bundle}, {"rootfs", st->rootfs}};
  }
  o.leave_running = f.leave_running;
  o.tcp_established = f.tcp_established;
  ENVRUN_CHECK(set_parent(f, o));
  if (f.compress == "zstd") o.writer.zstd = true;
  else if (!f.compress.empty() && f.compress != "none")
    return Error::make(ErrorKind::Usage, "--compress: \"" + f.compress + "\": use zstd or none");
  if (f.hold_fd >= 0) {
    if (f.leave_running) return Error::make(ErrorKind::Usage, "--hold-fd: not with --leave-running (the tree runs on anyway)");
    // One byte: 'k' kills the held tree; anything else, or the end of the fd, lets it go on.
    o.hold = [fd = f.hold_fd] {
      char c = 0;
      ssize_t n;
      while ((n = ::read(fd, &c, 1)) < 0 && errno == EINTR) {}
      ::close(fd);
      return n == 1 && c == 'k';
    };
  }
  // The image file (or with --stream, the --parent-stub) is written under a temporary
  // name and renamed when complete; a failed checkpoint removes it, and the directory if
  // it made it.
  UniqueFd out;
  std::string tmp, final_path;
  bool made_dir = false;
  if (f.stream_fd >= 0) {
    o.out_fd = f.stream_fd;
    o.out_name = "stream fd " + std::to_string(f.stream_fd);
    // The reader sees the end of the stream once the image is whole, not after the tree
    // is dead (a killed tree of a large memory takes a while to exit).
    o.image_done = [fd = f.stream_fd, held = f.hold_fd >= 0] {
      if (held) std::printf("image whole\n"), std::fflush(stdout);  // before the end of the stream (migrate reads it)
      ::close(fd);
    };
    if (f.parent_stub && f.image_path.empty()) return Error::make(ErrorKind::Usage, "--parent-stub needs --image-path DIR");
  } else {
    if (f.parent_stub) return Error::make(ErrorKind::Usage, "--parent-stub: only with --stream (the image file is the parent)");
    if (f.image_path.empty()) return Error::make(ErrorKind::Usage, "give --image-path DIR or --stream FD");
  }
  if (f.stream_fd < 0 || f.parent_stub) {
    made_dir = ::access(f.image_path.c_str(), F_OK) != 0;
    ENVRUN_CHECK(fs::mkdir_p(f.image_path, 0700));
    final_path = f.image_path + "/" + kImageFile;
    tmp = final_path + ".partial";
    out.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out) return Error::sys(tmp);
    if (f.stream_fd >= 0) {
      o.stub_fd = out.get();
    } else {
      o.out_fd = out.get();
      o.out_name = final_path;
    }
  }
  auto discard = [&] {
    if (!tmp.empty()) ::unlink(tmp.c_str());
    if (made_dir) ::rmdir(f.image_path.c_str());
  };
  ::signal(SIGPIPE, SIG_IGN);
  // Processes with the interception library flush and save first (ckpt/inproc.hpp).
  std::string ctl = st ? g.store().dir(st->id) + "/" + runtime::kInterceptCtlName : "";
  auto inproc = ckpt::inproc_checkpoint(o.root, ctl, o.inventory);
  if (!inproc) return discard(), std::move(inproc).error();
  auto dumped = ckpt::dump(o);
  if (*inproc) (*inproc)->release();
  if (!dumped) return discard(), std::move(dumped).error();
  if (!tmp.empty()) {
    if (::fsync(out.get()) < 0 || ::rename(tmp.c_str(), final_path.c_str()) < 0) {
      ::unlink(tmp.c_str());
      return Error::sys(final_path);
    }
  }
  // Like runc: a checkpointed (and so stopped) container is deleted; restore re-creates it.
  if (st && dumped->killed) ENVRUN_CHECK(metering::delete_metered(g.store(), st->id, true));
  for (const auto& w : dumped->warnings) std::fprintf(stderr, "envrun: checkpoint: warning: %s\n", w.c_str());
  if (f.stats) print_dump_stats(*dumped);
  return 0;
}

Result<int> run_restore(Globals& g, const RestoreFlags& f) {
  ckpt::RestoreOptions o;
  if (f.page_fetch_fd >= 0 && !f.lazy_pages) return Error::make(ErrorKind::Usage, "--page-fetch-fd needs --lazy-pages");
  UniqueFd in;
  if (f.stream_fd >= 0) {
    o.in_fd = f.stream_fd;
    o.in_name = "stream fd " + std::to_string(f.stream_fd);
    o.verify_first = false;
  } else {
    if (f.image_path.empty()) return Error::make(ErrorKind::Usage, "give --image-path DIR or --stream FD");
    std::string path = f.image_path + "/" + kImageFile;
    in.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return Error::sys(path);
    o.in_fd = in.get();
    o.in_name = path;
    o.image_dir = f.image_path;
  }
  o.lazy_pages = f.lazy_pages;
  if (f.page_fetch_fd >= 0 && ::fcntl(f.page_fetch_fd, F_SETFD, FD_CLOEXEC) < 0)
    return Error::sys("--page-fetch-fd " + std::to_string(f.page_fetch_fd));
  o.page_fetch_fd = f.page_fetch_fd;
  if (f.id.empty()) {
    auto r = ckpt::restore(o);
    if (!r) return std::move(r).error();
    if (f.stats) print_restore_stats(r->stats);
    std::printf("%d\n", r->root_pid);
    if (f.stats) print_lazy_stats(*r);
    else if (r->lazy_report >= 0) ::close(r->lazy_report);
    return 0;
  }
  // A container: created from the bundle (namespaces, rootfs, cgroup) with the restore
  // stub in place of its process, then taken over by the engine.
  auto store = g.store();
  runtime::CreateOptions co;
  co.id = f.id;
  co.bundle = f.bundle;
  std::optional<runtime::Created> created;
  std::optional<ckpt::InprocRestore> inproc;  // the new page holds hooked calls until restore hooks ran
  auto image_inproc = f.stream_fd < 0 ? ckpt::inproc_of_image(o.in_fd, o.in_name) : nlohmann::json();
  // Files of the container's own mounts were recorded below its root: find them in the
  // new container's rootfs (the bundle's).
  auto spec = ENVRUN_TRY(bundle::load_spec(f.bundle));
  bool own_pid_ns = spec.envrun.isolation != "intercept" && spec.linux &&
                    std::any_of(spec.linux->namespaces.begin(), spec.linux->namespaces.end(),
                                [](const auto& n) { return n.type == "pid" && n.path.empty(); });
  if (!own_pid_ns)
    return Error::make(ErrorKind::Usage, "bundle " + f.bundle + ": " +
                                             (spec.envrun.isolation == "intercept" ? "envrun.isolation is intercept"
                                                                                   : "linux.namespaces has no new \"pid\" namespace") +
                                             ": a container is restored with its processes' old pids, which needs a pid namespace "
                                             "of its own (restore the tree with its host pids: envrun restore --image-path DIR, without an id)");
  char here[4096];
  std::string bundle_abs = f.bundle[0] == '/' ? f.bundle : fs::join(::getcwd(here, sizeof here) ? here : "/", f.bundle);
  o.new_root = spec.root.path[0] == '/' ? spec.root.path : fs::join(bundle_abs, spec.root.path);
  o.spawn_root = [&](const std::function<void()>& run_stub) -> Result<pid_t> {
    co.init_replacement = run_stub;
    ENVRUN_CHECK(metering::check_bundle_settings(co.bundle));
    created = ENVRUN_TRY(runtime::create_container(store, co, !f.detach));
    inproc = ENVRUN_TRY(ckpt::inproc_restore(store.dir(co.id) + "/" + runtime::kInterceptCtlName, image_inproc));
    ENVRUN_CHECK(runtime::start_container(store, co.id));
    return created->state.pid;
  };
  auto r = ckpt::restore(o);
  if (!r) {
    if (created) (void)runtime::delete_container(store, f.id, true);
    return std::move(r).error();
  }
  if (inproc) inproc->finish(r->root_pid, image_inproc.is_object() ? image_inproc.value("answered", -1L) : -1);
  if (f.stats) print_restore_stats(r->stats), print_lazy_stats(*r);
  else if (r->lazy_report >= 0) ::close(r->lazy_report);
  if (f.detach) return 0;
  int status = ENVRUN_TRY(runtime::wait_container(r->root_pid, created->console_master));
  ENVRUN_CHECK(metering::delete_metered(store, f.id, true));
  return status;
}

}  // namespace

void add_checkpoint(CLI::App& app, Globals& g) {
  static CheckpointFlags cf;
  auto* c = app.add_subcommand("checkpoint", "save a process tree's complete state to an image");
  c->add_option("id", cf.id, "container id");
  c->add_option("--pid", cf.pid, "checkpoint the process tree rooted at this host pid instead of a container");
  c->add_option("--image-path", cf.image_path, "directory for the image (file envrun.img)");
  c->add_option("--stream", cf.stream_fd, "write the image as one stream to this open fd");
  c->add_flag("--leave-running", cf.leave_running, "let the tree run on after the checkpoint (default: kill it)");
  c->add_flag("--parent-stub", cf.parent_stub,
              "with --stream: also write --image-path/envrun.img holding the inventory alone, enough to be the "
              "--parent-path of the next round's checkpoint (not to restore from)");
  c->add_option("--hold-fd", cf.hold_fd,
                "keep the tree stopped after the image until a byte arrives on this fd: 'k' kills it, anything else "
                "or its end lets it run on (a migration's final round)");
  c->add_flag("--tcp-established", cf.tcp_established,
              "save established TCP connections (TCP_REPAIR; default: refuse them)");
  c->add_option("--compress", cf.compress, "zstd: compress every section");
  c->add_option("--parent-path", cf.parent_path,
                "incremental: only the pages changed since the image in this directory (relative to --image-path)");
  c->add_flag("--track-mem", cf.track_mem, "track memory changes from now on, for a later --parent-path checkpoint "
                                           "(needs --leave-running)");
  c->add_flag("--stats", cf.stats, "print freezing/frozen/memory times and page counts");
  on_run(c, g, "checkpoint", &cf.id, [&g]() -> Result<int> { return run_checkpoint(g, cf); });

  static RestoreFlags rf;
  auto* r = app.add_subcommand("restore", "re-create a process tree from an image; prints the root's pid");
  r->add_option("id", rf.id, "container id (without one: the host process tree of a --pid checkpoint)");
  r->add_option("-b,--bundle", rf.bundle, "bundle directory the container is re-created from")->capture_default_str();
  r->add_flag("-d,--detach", rf.detach, "return once the container runs (default: wait for it, then delete it)");
  r->add_option("--image-path", rf.image_path, "directory of the image (file envrun.img)");
  r->add_option("--stream", rf.stream_fd, "read the image as one stream from this open fd");
  r->add_flag("--stats", rf.stats, "print restore times and page counts (with --lazy-pages: waits until every page is in)");
  r->add_flag("--lazy-pages", rf.lazy_pages, "run before the private anonymous memory is in: a page server process "
                                             "answers faults first and copies the rest in the background");
  r->add_option("--page-fetch-fd", rf.page_fetch_fd,
                "with --lazy-pages: the image's pages sections are holes, asked for on this fd (envrun migrate --lazy)");
  on_run(r, g, "restore", &rf.id, [&g]() -> Result<int> { return run_restore(g, rf); });
}

}  // namespace envrun::cli
