// MemoryTracking (incremental.hpp): the dump side of incremental checkpoints.
#include "ckpt/incremental.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "ckpt/clock.hpp"
#include "ckpt/dirty_track.hpp"
#include "ckpt/infect/infect.hpp"
#include "ckpt/proc_read.hpp"
#include "kernel/process.hpp"

namespace envrun::ckpt {

struct MemoryTracking::Proc {
  pid_t pid = 0, host_pid = 0;
  uint64_t start_time = 0;
  const TrackedProcess* rec = nullptr;  // the parent's entry, when this process is tracked
  std::optional<DirtyTracker> tracker;
  std::vector<Vma> vmas;  // what to dump as a full dump would, when tracked
  PageRanges written;     // and the pages written since the parent
  PageRanges in_parent;   // present, not written since the parent: the parent has them
  PageRanges scanned;     // tracked ranges scanned (still protected)
  PageRanges arm_ranges;  // the mappings to track from now on (one range per mapping)
};

namespace {

std::string hex_id() {
  uint8_t b[16] = {};
  if (::getrandom(b, sizeof b, 0) != ssize_t(sizeof b))
    for (auto& x : b) x = uint8_t(now_us() * 2654435761u >> 13);
  std::string s;
  char h[3];
  for (uint8_t x : b) std::snprintf(h, sizeof h, "%02x", x), s += h;
  return s;
}

std::string pid_s(pid_t p) { return "pid " + std::to_string(p); }

bool trackable(const Vma& v) { return v.kind == Vma::Kind::Anon && !v.shared; }

Vma piece_of(const Vma& v, const PageRange& r) {
  Vma p = v;
  p.start = r.start, p.end = r.end;
  return p;
}

Result<uint64_t> vdso_syscall(pid_t pid, const std::vector<Vma>& vmas) {
  for (const auto& v : vmas)
    if (v.kind == Vma::Kind::Vdso) return infect::find_syscall_insn(pid, v.start, v.end);
  return Error::make(ErrorKind::System, pid_s(pid) + ": no [vdso] mapping to run system calls from");
}

}  // namespace

nlohmann::json to_json(const TrackRecord& t) {
  nlohmann::json procs = nlohmann::json::array();
  for (const auto& p : t.procs) {
    nlohmann::json ranges = nlohmann::json::array();
    for (const auto& r : p.ranges) ranges.push_back({r.start, r.end});
    procs.push_back({{"pid", p.pid}, {"host_pid", p.host_pid}, {"start_time", p.start_time}, {"fd", p.fd},
                     {"ino", p.ino}, {"ranges", ranges}});
  }
  return {{"id", t.id}, {"root_host_pid", t.root_host_pid}, {"root_start_time", t.root_start_time}, {"procs", procs}};
}

Result<TrackRecord> track_from_json(const nlohmann::json& j, const std::string& what) {
  TrackRecord t;
  try {
    t.id = j.at("id").get<std::string>();
    t.root_host_pid = j.at("root_host_pid").get<pid_t>();
    t.root_start_time = j.at("root_start_time").get<uint64_t>();
    for (const auto& p : j.at("procs")) {
      TrackedProcess tp;
      tp.pid = p.at("pid").get<pid_t>();
      tp.host_pid = p.at("host_pid").get<pid_t>();
      tp.start_time = p.at("start_time").get<uint64_t>();
      tp.fd = p.at("fd").get<int>();
      tp.ino = p.at("ino").get<uint64_t>();
      for (const auto& r : p.at("ranges")) tp.ranges.push_back({r.at(0).get<uint64_t>(), r.at(1).get<uint64_t>()});
      tp.ranges = normalized(std::move(tp.ranges));
      t.procs.push_back(std::move(tp));
    }
  } catch (const std::exception& e) {
    return Error::make(ErrorKind::Config, what + ": inventory: track: " + e.what());
  }
  return t;
}

Result<nlohmann::json> read_inventory(int fd, const std::string& name) {
  auto in = ENVRUN_TRY(ImageReader::from_fd(fd, name));
  auto h = ENVRUN_TRY(in.next());
  if (!h || h->section_type() != SectionType::Inventory)
    return Error::make(ErrorKind::Config, name + ": the first section is not the inventory");
  auto bytes = ENVRUN_TRY(in.read_payload());
  try {
    return nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    return Error::make(ErrorKind::Config, name + ": inventory: " + e.what());
  }
}

MemoryTracking::~MemoryTracking() = default;

Result<std::unique_ptr<MemoryTracking>> MemoryTracking::begin(const DumpOptions& o,
                                                                const std::vector<LiveProcess>& live) {
  uint64_t t0 = now_us();
  std::unique_ptr<MemoryTracking> m(new MemoryTracking);
  m->arming_ = o.leave_running && (o.track_mem || !o.parent_image.empty());
  m->record_.id = hex_id();
  if (!live.empty()) {
    m->record_.root_host_pid = live[0].host_pid;
    m->record_.root_start_time = ::envrun::proc::start_time(live[0].host_pid).value_or(0);
  }
  if (!o.parent_image.empty()) ENVRUN_CHECK(m->load_parent(o, live));
  for (const auto& lp : live) {
    auto p = std::make_unique<Proc>();
    p->pid = lp.core->pid;
    p->host_pid = lp.host_pid;
    p->start_time = ::envrun::proc::start_time(lp.host_pid).value_or(0);
    if (lp.core->zombie) {  // no memory, no tracker
      m->procs_.push_back(std::move(p));
      continue;
    }
    ENVRUN_CHECK(m->take_over(*p, lp));
    ENVRUN_CHECK(m->scan(*p, lp));
    if (m->arming_ && p->tracker)
      m->record_.procs.push_back({p->pid, p->host_pid, p->start_time, p->tracker->target_fd(), p->tracker->ino(),
                                  normalized(p->arm_ranges)});
    m->procs_.push_back(std::move(p));
  }
  m->track_us_ = now_us() - t0;
  return m;
}

Result<void> MemoryTracking::load_parent(const DumpOptions& o, const std::vector<LiveProcess>& live) {
  std::string what = "--parent-path " + (o.parent_ref.empty() ? o.parent_image : o.parent_ref);
  UniqueFd fd(::open(o.parent_image.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::sys(what + ": " + o.parent_image);
  auto inv = ENVRUN_TRY(read_inventory(fd.get(), o.parent_image));
  if (!inv.contains("track"))
    return Error::make(ErrorKind::State, what + ": that image was taken without memory tracking, so nothing "
                                                "tracked the changes since (take it with --leave-running --track-mem)");
  parent_ = std::make_unique<TrackRecord>(ENVRUN_TRY(track_from_json(inv["track"], o.parent_image)));
  parent_ref_ = o.parent_ref.empty() ? o.parent_image : o.parent_ref;
  if (!live.empty() && (parent_->root_host_pid != live[0].host_pid ||
                        parent_->root_start_time != record_.root_start_time))
    return Error::make(ErrorKind::State, what + ": an image of another process tree (its root: host pid " +
                                             std::to_string(parent_->root_host_pid) + " started at tick " +
                                             std::to_string(parent_->root_start_time) + "; this tree's: pid " +
                                             std::to_string(live[0].host_pid) + " started at tick " +
                                             std::to_string(record_.root_start_time) + ")");
  return ok();
}

// The process's tracker: the parent round's (moved to a new fd number before the scan,
// so that a dump failing after it leaves no image that looks like the round's start),
// else a new one when arming. Inherited copies of other processes' trackers are closed.
Result<void> MemoryTracking::take_over(Proc& p, const LiveProcess& lp) {
  if (parent_) {
    auto it = std::find_if(parent_->procs.begin(), parent_->procs.end(),
                           [&](const TrackedProcess& t) { return t.pid == p.pid; });
    std::string why;
    if (it == parent_->procs.end()) why = "not tracked in the parent image";
    else if (it->start_time != p.start_time) why = "a new process with a pid of the parent image";
    else if (auto a = DirtyTracker::adopt(p.host_pid, it->fd, it->ino); !a) why = a.error().message;
    else p.tracker = std::move(*a), p.rec = &*it;
    if (!p.rec) warnings_.push_back(pid_s(p.pid) + ": memory dumped whole: " + why);
  }
  if (!p.rec && !arming_) return ok();
  uint64_t insn = ENVRUN_TRY(vdso_syscall(p.host_pid, lp.core->vmas));
  auto r = ENVRUN_TRY(infect::Remote::open(lp.tids.at(0), insn));
  if (p.rec) ENVRUN_CHECK(p.tracker->renumber(r));
  if (arming_) {
    auto fds = ENVRUN_TRY(proc::read_fds(p.host_pid));
    for (const auto& f : fds)
      if (is_tracker_fd(f) && (!p.tracker || f.fd != p.tracker->target_fd()))
        ENVRUN_CHECK(close_tracker_copy(r, p.host_pid, f.fd));
    if (!p.tracker) {
      auto made = DirtyTracker::create(r, p.host_pid);
      if (made) p.tracker = std::move(*made);
      else warnings_.push_back(pid_s(p.pid) + ": not tracked: " + made.error().message);
    }
  }
  return r.close();
}

// Cuts the tracked parts of each private anonymous mapping down to the pages written
// since the parent; what the parent's round did not track is dumped whole.
Result<void> MemoryTracking::scan(Proc& p, const LiveProcess& lp) {
  UniqueFd pm;
  if (p.rec) {
    pm.reset(::open(("/proc/" + std::to_string(p.host_pid) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC));
    if (!pm) return Error::sys("/proc/" + std::to_string(p.host_pid) + "/pagemap");
  }
  for (const auto& v : lp.core->vmas) {
    if (trackable(v) && v.prot != PROT_NONE) p.arm_ranges.push_back({v.start, v.end});
    if (!p.rec || !trackable(v)) {
      p.vmas.push_back(v);
      continue;
    }
    PageRanges all{{v.start, v.end}};
    PageRanges pieces = intersect(all, p.rec->ranges);
    PageRanges whole = subtract(all, pieces);
    for (const auto& piece : pieces) {
      auto s = ENVRUN_TRY(scan_dirty(pm.get(), piece));
      if (!s) {
        whole.push_back(piece);
        continue;
      }
      p.scanned.push_back(piece);
      PageRanges written = subtract(s->written, s->absent);
      p.written.insert(p.written.end(), written.begin(), written.end());
      PageRanges kept = subtract(subtract({piece}, s->written), s->absent);
      p.in_parent.insert(p.in_parent.end(), kept.begin(), kept.end());
    }
    for (const auto& r : normalized(std::move(whole))) p.vmas.push_back(piece_of(v, r));
  }
  std::sort(p.vmas.begin(), p.vmas.end(), [](const Vma& a, const Vma& b) { return a.start < b.start; });
  p.in_parent = normalized(std::move(p.in_parent));
  p.written = normalized(std::move(p.written));
  p.scanned = normalized(std::move(p.scanned));
  return ok();
}

const std::vector<Vma>* MemoryTracking::dump_vmas(size_t i) const {
  return i < procs_.size() && procs_[i]->rec ? &procs_[i]->vmas : nullptr;
}

const PageRanges* MemoryTracking::written_pages(size_t i) const {
  return i < procs_.size() && procs_[i]->rec ? &procs_[i]->written : nullptr;
}

void MemoryTracking::annotate(nlohmann::json& inventory) const {
  if (parent_) inventory["parent"] = {{"path", parent_ref_}, {"track_id", parent_->id}};
  if (arming_) inventory["track"] = to_json(record_);
}

Result<void> MemoryTracking::write_sections(ImageWriter& w) const {
  for (const auto& p : procs_)
    if (!p->in_parent.empty()) ENVRUN_CHECK(w.add(SectionType::ParentPages, uint64_t(p->pid), encode_ranges(p->in_parent)));
  return ok();
}

void MemoryTracking::arm() {
  uint64_t t0 = now_us();
  for (auto& p : procs_) {
    if (!arming_ || !p->tracker) continue;
    for (const auto& r : p->arm_ranges)
      for (const auto& piece : subtract({r}, p->scanned))
        if (auto done = p->tracker->protect(piece); !done)
          warnings_.push_back(pid_s(p->pid) + ": " + done.error().message + " (dumped whole next time)");
    p->tracker.reset();
  }
  track_us_ += now_us() - t0;
}

void MemoryTracking::add_stats(DumpStats& st) const {
  for (const auto& p : procs_) st.pages_in_parent += page_count(p->in_parent);
  st.track_us += track_us_;
  st.warnings.insert(st.warnings.end(), warnings_.begin(), warnings_.end());
}

}  // namespace envrun::ckpt
