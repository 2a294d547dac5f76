// dump(): freeze, seize every thread, capture every process, write the image, then
// let the tree go on (--leave-running) or kill it. Image order (restore reads it so):
// inventory, files (+ file-data), then per process: process-core, thread-regs and
// thread-xstate of each thread; then the memory (pages, shared-mem); end.
#include "ckpt/clock.hpp"
#include "ckpt/dump.hpp"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <set>

#include "ckpt/dump_files.hpp"
#include "ckpt/dump_mem.hpp"
#include "ckpt/dump_process.hpp"
#include "ckpt/freeze.hpp"
#include "ckpt/image_space.hpp"
#include "ckpt/incremental.hpp"
#include "ckpt/proc_read.hpp"

namespace envrun::ckpt {

namespace {

struct Seized {
  pid_t pid;
  bool zombie;
  std::vector<pid_t> tids;
};

// Every thread of the tree under ptrace and stopped. With a freezer the tree cannot
// change meanwhile: seize and queue the interrupts while frozen, thaw, wait for stops.
// Without one, seize again until no new process or thread shows up.
Result<std::vector<Seized>> seize_tree(pid_t root, Freezer& fz) {
  std::vector<Seized> out;
  std::set<pid_t> seized;
  for (int round = 0; round < 20; ++round) {
    bool grew = false;
    for (pid_t pid : proc::tree(root)) {
      ProcessCore id;
      if (!proc::read_identity(pid, id)) continue;  // gone meanwhile
      auto it = std::find_if(out.begin(), out.end(), [&](const Seized& s) { return s.pid == pid; });
      if (it == out.end()) out.push_back({pid, id.zombie, {}}), it = out.end() - 1;
      if (id.zombie) continue;
      auto tids = proc::threads(pid);
      if (!tids) continue;
      for (pid_t tid : *tids) {
        if (seized.count(tid)) continue;
        ENVRUN_CHECK(infect::seize(tid));
        seized.insert(tid);
        if (fz.frozen()) ENVRUN_CHECK(infect::interrupt_nowait(tid));
        else ENVRUN_CHECK(infect::interrupt(tid));
        it->tids.push_back(tid);
        grew = true;
      }
    }
    if (!grew) break;
    if (fz.frozen()) break;  // frozen: one pass sees everything
  }
  if (out.empty() || out[0].pid != root)
    return Error::make(ErrorKind::NotFound, "pid " + std::to_string(root) + ": no such process");
  if (out[0].zombie) return Error::make(ErrorKind::State, "pid " + std::to_string(root) + ": a zombie cannot be checkpointed");
  if (fz.frozen()) {
    ENVRUN_CHECK(fz.thaw());
    for (auto& s : out)
      for (pid_t tid : s.tids) ENVRUN_CHECK(infect::wait_interrupted(tid));
  }
  for (auto& s : out) {  // main thread first, as proc::threads orders them
    auto order = proc::threads(s.pid);
    if (order) {
      std::vector<pid_t> sorted;
      for (pid_t t : *order)
        if (std::find(s.tids.begin(), s.tids.end(), t) != s.tids.end()) sorted.push_back(t);
      s.tids = sorted;
    }
  }
  return out;
}

// The pid namespace of a process ("" when it is gone).
std::string pid_ns_of(const std::string& pid) {
  char buf[64];
  ssize_t n = ::readlink(("/proc/" + pid + "/ns/pid").c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

// Lets the tree go on (detach), or kills it and waits until every seized thread is dead.
//
// A killed tracee stays a zombie until its tracer (we) waits for it: a non-leader
// thread always, a leader until we have seen its exit (then its parent reaps it).
// Blocking waits in a fixed order can hang: the last thread of a pid namespace's init
// to exit, whichever of its threads that is, stays in the kernel (zap_pid_ns_processes)
// until every other task of the namespace is released, init's own exited threads
// included, and a leader is reported only after its other threads are reaped. So every
// seized thread is polled (WNOHANG) until each has been seen to exit, in any order.
// A tree in our own pid namespace is then waited for (bounded) until its parents have
// reaped it, so that a restore right after finds its pids free; a tree in a pid
// namespace of its own is restored into a new one and need not wait for its parent.
void release_tree(const std::vector<Seized>& tree, bool kill_it) {
  if (!kill_it) {
    for (const auto& s : tree)
      for (pid_t tid : s.tids) (void)infect::detach(tid);
    return;
  }
  bool same_ns = !tree.empty() && pid_ns_of(std::to_string(tree[0].pid)) == pid_ns_of("self");
  std::vector<pid_t> left;
  for (const auto& s : tree) {
    if (s.zombie) continue;
    ::kill(s.pid, SIGKILL);
    left.insert(left.end(), s.tids.begin(), s.tids.end());
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  useconds_t nap = 10;
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    size_t before = left.size();
    std::erase_if(left, [](pid_t tid) {
      int status = 0;
      pid_t r = ::waitpid(tid, &status, __WALL | WNOHANG);
      if (r < 0) return errno != EINTR;  // ECHILD: no longer ours (released already)
      return r == tid && (WIFEXITED(status) || WIFSIGNALED(status));
    });
    nap = left.size() < before ? 10 : std::min<useconds_t>(nap * 2, 1000);
    if (!left.empty()) ::usleep(nap);
  }
  if (!same_ns) return;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (const auto& s : tree)
    while (::kill(s.pid, 0) == 0 && std::chrono::steady_clock::now() < deadline) ::usleep(200);
}

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

nlohmann::json inventory(const DumpOptions& o, const std::vector<CapturedProcess>& procs) {
  struct utsname u {};
  ::uname(&u);
  nlohmann::json j = o.inventory.is_object() ? o.inventory : nlohmann::json::object();
  j["engine"] = std::string("envrun ") + ENVRUN_VERSION;
  j["image_format"] = kImageFormat;
  j["kernel"] = u.release;
  j["arch"] = u.machine;
  j["root_pid"] = procs.empty() ? 0 : procs[0].core.pid;
  j["processes"] = procs.size();
  if (!procs.empty())
    for (const auto& v : procs[0].core.vmas)
      if (v.kind == Vma::Kind::Vdso) j["vdso_size"] = v.size();
  return j;
}

// Everything but the memory: inventory, files, each process's core and its threads.
Result<void> write_state(ImageWriter& w, const DumpOptions& o, const std::vector<CapturedProcess>& procs,
                         const FileTable& files, const MemoryTracking* trk) {
  auto inv = inventory(o, procs);
  if (trk) trk->annotate(inv);
  std::string text = inv.dump();
  ENVRUN_CHECK(w.add(SectionType::Inventory, 0, bytes_of(text)));
  if (o.stub_fd >= 0) {
    auto stub = ENVRUN_TRY(ImageWriter::to_fd(o.stub_fd, "the parent stub", {}));
    ENVRUN_CHECK(stub.add(SectionType::Inventory, 0, bytes_of(text)));
    ENVRUN_CHECK(stub.finish());
  }
  nlohmann::json fj = nlohmann::json::array();
  for (const auto& f : files.files()) fj.push_back(to_json(f));
  ENVRUN_CHECK(w.add(SectionType::Files, 0, bytes_of(fj.dump())));
  for (const auto& [id, bytes] : files.data()) ENVRUN_CHECK(w.add(SectionType::FileData, id, bytes));
  for (const auto& c : procs) {
    ENVRUN_CHECK(w.add(SectionType::ProcessCore, uint64_t(c.core.pid), bytes_of(to_json(c.core).dump())));
    for (size_t i = 0; i < c.regs.size(); ++i) {
      uint64_t tid = uint64_t(c.core.threads[i].tid);
      const auto& gp = c.regs[i].gp;
      ENVRUN_CHECK(w.add(SectionType::ThreadRegs, tid,
                         std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&gp), sizeof gp)));
      ENVRUN_CHECK(w.add(SectionType::ThreadXstate, tid, c.regs[i].xstate));
    }
  }
  return ok();
}

// The memory sections, then the end of the image.
Result<void> write_memory(ImageWriter& w, const std::vector<CapturedProcess>& procs, const std::vector<Seized>& tree,
                          DumpStats& st, const MemoryTracking* trk, bool live) {
  MemDumper mem{w, st};
  mem.live = live;
  for (size_t i = 0; i < procs.size(); ++i) {
    if (procs[i].core.zombie) continue;
    const auto* vmas = trk ? trk->dump_vmas(i) : nullptr;  // incremental: only what changed
    ENVRUN_CHECK(mem.dump_process(tree[i].pid, uint64_t(procs[i].core.pid), vmas ? *vmas : procs[i].core.vmas));
    const auto* written = trk ? trk->written_pages(i) : nullptr;
    if (written && !written->empty()) ENVRUN_CHECK(mem.dump_pages(tree[i].pid, uint64_t(procs[i].core.pid), *written));
  }
  if (trk) ENVRUN_CHECK(trk->write_sections(w));
  ENVRUN_CHECK(w.finish());
  st.image_bytes = w.bytes_written();
  return ok();
}

}  // namespace

Result<DumpStats> dump(const DumpOptions& o) {
  DumpStats st;
  Freezer fz(o.freezer_dir);
  // The image file's pages allocated while the tree still runs (a full, uncompressed
  // image to a file): the frozen window then only copies. finish() trims the excess.
  if (o.parent_image.empty() && !o.writer.zstd) reserve_image_space(o.out_fd, estimate_image_bytes(o.root));
  uint64_t t0 = now_us();
  st.freeze_start_us = t0;
  ENVRUN_CHECK(fz.freeze());
  auto tree = seize_tree(o.root, fz);
  if (!tree) return std::move(tree).error();  // threads seized so far are let go when envrun exits
  uint64_t t1 = now_us();
  st.freezing_us = t1 - t0;
  FileTable files(o.tcp_established);
  auto finish = [&](bool kill_it) {
    if (!kill_it) files.end_repair();  // else closed silently once the tree is dead
    release_tree(*tree, kill_it);
    st.frozen_us = now_us() - t1;
  };
  std::vector<CapturedProcess> procs;
  for (const auto& s : *tree) {
    if (s.zombie) {
      CapturedProcess z;
      auto r = proc::read_identity(s.pid, z.core);
      if (!r) return finish(false), std::move(r).error();
      procs.push_back(std::move(z));
      continue;
    }
    auto c = capture_process(s.pid, s.tids, files);
    if (!c) return finish(false), std::move(c).error();
    st.threads += s.tids.size();
    procs.push_back(std::move(*c));
  }
  if (auto r = files.check_peers(); !r) return finish(false), std::move(r).error();
  st.processes = procs.size();
  // Parents as the tree sees them (status shows PPid in the host's pid namespace).
  for (auto& c : procs)
    for (size_t k = 0; k < tree->size(); ++k)
      if ((*tree)[k].pid == c.core.ppid) {
        c.core.ppid = procs[k].core.pid;
        break;
      }
  std::unique_ptr<MemoryTracking> trk;
  if (!o.parent_image.empty() || o.track_mem) {
    std::vector<LiveProcess> live;
    for (size_t k = 0; k < procs.size(); ++k) live.push_back({(*tree)[k].pid, (*tree)[k].tids, &procs[k].core});
    auto t = MemoryTracking::begin(o, live);
    if (!t) return finish(false), std::move(t).error();
    trk = std::move(*t);
  }
  auto w = ImageWriter::to_fd(o.out_fd, o.out_name, o.writer);
  if (!w) return finish(false), std::move(w).error();
  if (auto r = write_state(*w, o, procs, files, trk.get()); !r) return finish(false), std::move(r).error();
  // A tracked pre-copy round reads the memory after the tree runs again: the trackers are
  // armed first, so a page written while it is read is dumped again by the next round
  // (whose parent this image is), and a torn read of it never reaches a restore.
  st.live_read = o.leave_running && trk;
  if (st.live_read) trk->arm(), finish(false);
  if (auto r = write_memory(*w, procs, *tree, st, trk.get(), st.live_read); !r) {
    if (!st.live_read) finish(false);
    return std::move(r).error();
  }
  if (trk) {
    if (!st.live_read) trk->arm();
    trk->add_stats(st);
  }
  if (o.image_done) o.image_done();
  if (!st.live_read) {
    st.killed = !o.leave_running && (!o.hold || o.hold());
    finish(st.killed);
  }
  return st;
}

}  // namespace envrun::ckpt
