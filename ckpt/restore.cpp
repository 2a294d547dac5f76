// restore() (restore.hpp): verify, plan, files, stub tree, take-over, pages, finish.
#include "ckpt/clock.hpp"
#include "ckpt/restore.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>

#include "ckpt/image.hpp"
#include "ckpt/incremental_restore.hpp"
#include "ckpt/lazy_restore.hpp"
#include "ckpt/proc_read.hpp"
#include "ckpt/restore_mm.hpp"
#include "ckpt/restore_pages.hpp"
#include "ckpt/restore_plan.hpp"
#include "ckpt/restore_stub.hpp"

namespace envrun::ckpt {

namespace {

// The stub tree, killed unless released: a failed restore leaves nothing running.
struct StubTree {
  pid_t root = 0;
  std::vector<pid_t> tids;  // seized threads (detached at the end)
  bool released = false;
  ~StubTree() {
    if (released || root <= 0) return;
    for (pid_t p : proc::tree(root)) ::kill(p, SIGKILL);
    ::kill(root, SIGKILL);
    for (pid_t t : tids) (void)infect::detach(t);
    ::waitpid(root, nullptr, 0);
  }
};

Result<void> wait_ready(int fd, size_t count) {
  for (size_t got = 0; got < count;) {
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, 30000);
    if (n == 0) return Error::make(ErrorKind::System, "restore: the process tree did not come up within 30 s");
    if (n < 0 && errno == EINTR) continue;
    StubReady r;
    ssize_t len = ::read(fd, &r, sizeof r);
    if (len == 0) return Error::make(ErrorKind::System, "restore: a process of the tree died while it was set up");
    if (len != ssize_t(sizeof r)) return Error::sys("restore: ready pipe");
    if (r.err) return Error::make(ErrorKind::System, "restore: pid " + std::to_string(r.pid) + ": " + r.msg);
    ++got;
  }
  return ok();
}

// Host pids and tids of the stub tree, matched to the image's by their namespace ids.
Result<void> find_host_ids(Plan& plan, pid_t root) {
  for (pid_t host : proc::tree(root)) {
    ProcessCore id;
    if (!proc::read_identity(host, id)) continue;
    size_t i = plan.index_of(id.pid);
    if (i == std::string::npos) continue;
    plan.procs[i].host_pid = host;
  }
  for (auto& pp : plan.procs) {
    if (pp.core.zombie) continue;
    if (!pp.host_pid) return Error::make(ErrorKind::System, "restore: pid " + std::to_string(pp.core.pid) + " did not come up");
    auto tids = ENVRUN_TRY(proc::threads(pp.host_pid));
    pp.host_tids.assign(pp.core.threads.size(), 0);
    for (pid_t t : tids) {
      pid_t ns = proc::ns_tid(pp.host_pid, t);
      for (size_t k = 0; k < pp.core.threads.size(); ++k)
        if (pp.core.threads[k].tid == ns) pp.host_tids[k] = t;
    }
    for (size_t k = 0; k < pp.host_tids.size(); ++k)
      if (!pp.host_tids[k])
        return Error::make(ErrorKind::System, "restore: thread " + std::to_string(pp.core.threads[k].tid) + " did not come up");
  }
  return ok();
}

// Lazy restore: the memory not left to the page server written, then the server
// started (before finish(), whose syscalls may touch the pages it serves).
Result<void> lazy_memory(const RestoreOptions& o, ImageReader& in, std::optional<SectionHeader> first_memory, Plan& plan,
                         ParentChain& chain, std::vector<std::unique_ptr<ProcessRebuild>>& rebuilds, pid_t root,
                         RestoreResult& res) {
  auto uffd = UffdPages::open_lazy(plan, rebuilds);
  auto lazy = ENVRUN_TRY(LazyRestore::open(plan, o.in_name, o.in_fd, o.page_fetch_fd));
  res.stats.pages_restored = ENVRUN_TRY(write_memory(in, first_memory, plan, chain, uffd, lazy.own(uffd)));
  res.stats.pages_restored += ENVRUN_TRY(chain.write_pages(plan, lazy.parents(uffd))) - lazy.parent_pages();
  res.stats.lazy_pages = lazy.pages();
  auto server = ENVRUN_TRY(lazy.start(uffd, root));
  res.lazy_server = server.pid;
  res.lazy_report = server.report.release();
  return ok();
}

}  // namespace

Result<RestoreResult> restore(const RestoreOptions& o) {
  if (o.lazy_pages) {
    struct stat st;
    if (o.in_fd < 0 || ::fstat(o.in_fd, &st) != 0 || !S_ISREG(st.st_mode))
      return Error::make(ErrorKind::Usage, "restore: --lazy-pages needs the image as a file (--image-path): "
                                           "the page server reads it after the restore");
  }
  RestoreResult res;
  uint64_t t0 = now_us();
  if (o.verify_first) {
    ENVRUN_CHECK(scan_image(o.in_fd, o.in_name));  // each payload is checked as it is read
    if (::lseek(o.in_fd, 0, SEEK_SET) < 0) return Error::sys("restore: " + o.in_name + ": seek");
  }
  auto in = ENVRUN_TRY(ImageReader::from_fd(o.in_fd, o.in_name));
  std::optional<SectionHeader> first_memory;
  auto plan = ENVRUN_TRY(read_plan(in, first_memory));
  auto chain = ENVRUN_TRY(ParentChain::open(plan.inventory, o.image_dir, !o.lazy_pages));  // each parent verified
  if (!o.old_root.empty()) plan.old_root = o.old_root;
  plan.new_root = o.new_root;
  ENVRUN_CHECK(open_files(plan));
  uint64_t t1 = now_us();
  res.stats.read_us = t1 - t0;

  int rp[2];
  if (::pipe2(rp, O_CLOEXEC) < 0) return Error::sys("restore: pipe2");
  UniqueFd ready_r(rp[0]), ready_w(rp[1]);
  StubTree tree;
  std::function<void()> run_stub = [&]() {
    ready_r.reset();
    stub_main(plan, 0, ready_w.get(), {});
  };
  Result<pid_t> root = pid_t(0);
  if (o.spawn_root) {
    root = o.spawn_root(run_stub);
  } else {
    root = clone3_with_pid(plan.procs[0].core.pid, 0);
    if (root && *root == 0) run_stub();
  }
  if (!root) return std::move(root).error();
  tree.root = *root;
  ready_w.reset();
  plan.file_fds.clear();  // the stubs hold them now
  plan.pipe_ends.clear();
  size_t live = 0;
  for (const auto& pp : plan.procs) live += pp.core.zombie ? 0 : 1;
  ENVRUN_CHECK(wait_ready(ready_r.get(), live));
  ENVRUN_CHECK(find_host_ids(plan, *root));
  for (auto& pp : plan.procs)
    for (pid_t t : pp.host_tids) {
      ENVRUN_CHECK(infect::seize(t));
      tree.tids.push_back(t);
      ENVRUN_CHECK(infect::interrupt(t));
    }
  uint64_t t2 = now_us();
  res.stats.forking_us = t2 - t1;

  std::vector<std::unique_ptr<ProcessRebuild>> rebuilds;
  for (auto& pp : plan.procs) {
    if (pp.core.zombie) continue;
    rebuilds.push_back(std::make_unique<ProcessRebuild>(plan, pp));
    auto r = rebuilds.back()->map_layout();
    if (!r) return std::move(r).error().with_context("restore: pid " + std::to_string(pp.core.pid));
    ++res.stats.processes;
    res.stats.threads += pp.core.threads.size();
  }
  if (o.lazy_pages) {
    ENVRUN_CHECK(lazy_memory(o, in, first_memory, plan, chain, rebuilds, *root, res));
  } else {
    auto uffd = UffdPages::open(plan, rebuilds);
    auto written = write_memory(in, first_memory, plan, chain, uffd);
    auto closed = uffd.close();  // before anything else writes their memory
    res.stats.pages_restored = ENVRUN_TRY(std::move(written));
    ENVRUN_CHECK(std::move(closed));
    res.stats.pages_restored += ENVRUN_TRY(chain.write_pages(plan));
  }
  for (auto& rb : rebuilds) ENVRUN_CHECK(rb->finish());
  plan.shm_fds.clear();
  res.stats.memory_us = now_us() - t2;
  for (pid_t t : tree.tids) ENVRUN_CHECK(infect::detach(t));
  tree.released = true;
  res.root_pid = *root;
  res.stats.total_us = now_us() - t0;
  return res;
}

}  // namespace envrun::ckpt
