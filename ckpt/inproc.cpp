// The checkpoint side of the in-process handshake (inproc.hpp): who has the library, the
// request, the answers, the release.
#include "ckpt/inproc.hpp"

#include <cstdio>

#include "ckpt/crc32c.hpp"
#include "ckpt/inproc_page.hpp"
#include "ckpt/proc_read.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"

namespace envrun::ckpt {

using inproc_detail::ControlPageMap;

namespace {

constexpr const char* kLibrary = "/libenvrun-intercept.so";
constexpr const char* kThreadName = "envrun-ckpt";
constexpr const char* kAnsweredName = "envrun-ckpt:ack";

std::string first_line(const std::string& path) {
  auto s = fs::read_file(path);
  if (!s) return "";
  return s->substr(0, s->find('\n'));
}

std::string thread_name(pid_t pid, pid_t tid) {
  return first_line("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
}

std::string describe(const Intercepted& p) { return std::to_string(p.pid) + " (" + p.comm + ")"; }

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::vector<Intercepted> find_intercepted(pid_t root) {
  std::vector<Intercepted> out;
  for (pid_t pid : proc::tree(root)) {
    std::string dir = "/proc/" + std::to_string(pid);
    auto maps = fs::read_file(dir + "/maps");
    if (!maps || maps->find(kLibrary) == std::string::npos) continue;
    Intercepted p{pid, 0, first_line(dir + "/comm")};
    if (auto tids = proc::threads(pid))
      for (pid_t tid : *tids)
        if (thread_name(pid, tid).rfind(kThreadName, 0) == 0) p.ckpt_tid = tid;
    out.push_back(std::move(p));
  }
  return out;
}

std::string control_page_of(pid_t pid) {
  auto maps = proc::read_maps(pid);
  if (!maps) return "";
  const std::string name = "/intercept.ctl";
  for (const auto& v : *maps) {
    if (v.kind != Vma::Kind::File || !v.shared || v.path.size() < name.size() ||
        v.path.compare(v.path.size() - name.size(), name.size(), name) != 0)
      continue;
    char range[64];
    std::snprintf(range, sizeof range, "%llx-%llx", (unsigned long long)v.start, (unsigned long long)v.end);
    return "/proc/" + std::to_string(pid) + "/map_files/" + range;
  }
  return "";
}

Result<InprocCheckpoint> InprocCheckpoint::begin(const std::string& ctl_path, const std::vector<Intercepted>& procs,
                                                 const InprocOptions& o) {
  InprocCheckpoint c;
  c.page_ = std::make_unique<ControlPageMap>(ENVRUN_TRY(ControlPageMap::open(ctl_path)));
  const ControlPageMap& page = *c.page_;
  std::vector<std::string> threadless;
  for (const auto& p : procs) {
    if (p.ckpt_tid) ++c.asked_;
    else threadless.push_back(describe(p));
  }
  if (!threadless.empty())
    log::warn("in-process checkpoint: " + join(threadless) +
              ": the interception library runs without a checkpoint thread (ENVRUN_INTERCEPT_CKPT=off?): "
              "stdio not flushed, interceptor state not saved");
  c.epoch_ = page.word(ictl::kCkptEpoch).load() + 1;
  page.word(ictl::kCkptLease).store(o.lease_ms);
  page.word(ictl::kCkptRelease).store(c.epoch_ - 1);  // a page reused after a restore may hold more
  page.word(ictl::kCkptAcks).store(uint64_t(uint32_t(c.epoch_)) << 32);
  page.word(ictl::kBarrierFlag).store(1);
  page.word(ictl::kCkptEpoch).store(c.epoch_);
  page.wake(ictl::kCkptEpoch);
  c.answered_ = page.wait_acks(uint32_t(c.epoch_), uint32_t(c.asked_), o.timeout_ms);
  if (c.answered_ < c.asked_) {
    std::vector<std::string> silent;
    for (const auto& p : procs)
      if (p.ckpt_tid && thread_name(p.pid, p.ckpt_tid) != kAnsweredName) silent.push_back(describe(p));
    log::warn("in-process checkpoint: " + std::to_string(c.asked_ - c.answered_) + " of " +
              std::to_string(c.asked_) + " processes did not answer within " + std::to_string(o.timeout_ms) +
              " ms" + (silent.empty() ? "" : " (pid " + join(silent) + ")") +
              ": dumping without their in-process part (stdio not flushed, interceptor state not saved)");
  }
  return c;
}

InprocCheckpoint::InprocCheckpoint(InprocCheckpoint&& o) noexcept
    : page_(std::move(o.page_)), epoch_(o.epoch_), asked_(o.asked_), answered_(o.answered_),
      released_(std::exchange(o.released_, true)) {}

InprocCheckpoint& InprocCheckpoint::operator=(InprocCheckpoint&& o) noexcept {
  if (this != &o) {
    release();
    page_ = std::move(o.page_);
    epoch_ = o.epoch_, asked_ = o.asked_, answered_ = o.answered_;
    released_ = std::exchange(o.released_, true);
  }
  return *this;
}

InprocCheckpoint::~InprocCheckpoint() { release(); }

void InprocCheckpoint::release() {
  if (released_ || !page_) return;
  released_ = true;
  page_->word(ictl::kCkptRelease).store(epoch_);
  page_->wake(ictl::kCkptRelease);
  page_->word(ictl::kBarrierFlag).store(0);
  page_->wake(ictl::kBarrierFlag);
}

Result<std::optional<InprocCheckpoint>> inproc_checkpoint(pid_t root, const std::string& ctl_path,
                                                          nlohmann::json& inventory, const InprocOptions& o) {
  auto procs = find_intercepted(root);
  if (procs.empty()) return std::optional<InprocCheckpoint>();
  std::string page = !ctl_path.empty() && fs::exists(ctl_path) ? ctl_path : control_page_of(procs[0].pid);
  if (page.empty()) {
    log::warn("in-process checkpoint: pid " + describe(procs[0]) +
              " has the interception library but no instance control page: dumping without the in-process part");
    return std::optional<InprocCheckpoint>();
  }
  auto c = ENVRUN_TRY(InprocCheckpoint::begin(page, procs, o));
  if (!inventory.is_object()) inventory = nlohmann::json::object();
  inventory["inproc"] = {{"asked", c.asked()}, {"answered", c.answered()}, {"epoch", c.epoch()}};
  if (page == ctl_path) {
    inventory["inproc"]["control_page"] = page;  // what a restore elsewhere maps anew
    if (auto db = fs::read_file(inproc_detail::db_next_to(page))) {
      inventory["inproc"]["db_size"] = db->size();
      inventory["inproc"]["db_crc32c"] = crc32c(db->data(), db->size());
    }
  }
  return std::optional<InprocCheckpoint>(std::move(c));
}

}  // namespace envrun::ckpt
