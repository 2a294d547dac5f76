// One instance's sampler: cgroup files, /proc per process and the control page (sampler.hpp).
#include "billing/sampler.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include <cstddef>
#include <cstring>
#include <utility>

#include "intercept/control.h"
#include "kernel/fd.hpp"

namespace envrun::billing {

namespace {

constexpr size_t kCountersEnd = offsetof(ictl::ControlPage, counters) + sizeof(ictl::ControlPage::counters);

int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  ::clock_gettime(id, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

ControlPageView::ControlPageView(ControlPageView&& o) noexcept
    : page_(std::exchange(o.page_, nullptr)), mapped_(std::exchange(o.mapped_, 0)) {}

ControlPageView& ControlPageView::operator=(ControlPageView&& o) noexcept {
  if (this != &o) {
    if (page_) ::munmap(const_cast<ictl::ControlPage*>(page_), mapped_);
    page_ = std::exchange(o.page_, nullptr);
    mapped_ = std::exchange(o.mapped_, 0);
  }
  return *this;
}

ControlPageView::~ControlPageView() {
  if (page_) ::munmap(const_cast<ictl::ControlPage*>(page_), mapped_);
}

Result<ControlPageView> ControlPageView::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int e = errno;
    return Error{e, e == ENOENT ? ErrorKind::NotFound : ErrorKind::System,
                 "control page " + path + ": " + std::strerror(e)};
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::sys("control page " + path + ": stat");
  if (size_t(st.st_size) < kCountersEnd)
    return Error::make(ErrorKind::System, "control page " + path + ": size: " + std::to_string(st.st_size) +
                                              " bytes, too small for the counters (" + std::to_string(kCountersEnd) + ")");
  size_t len = std::min(size_t(st.st_size), sizeof(ictl::ControlPage));
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return Error::sys("control page " + path + ": mmap");
  ControlPageView v;
  v.page_ = static_cast<const ictl::ControlPage*>(p);
  v.mapped_ = len;
  if (std::memcmp(v.page_->magic, ictl::kMagic, sizeof ictl::kMagic) != 0)
    return Error::make(ErrorKind::System, "control page " + path + ": magic: not an envrun control page");
  if (v.page_->version != ictl::kVersion)
    return Error::make(ErrorKind::System, "control page " + path + ": version: " + std::to_string(v.page_->version) +
                                              ", expected " + std::to_string(ictl::kVersion));
  if (v.page_->size < kCountersEnd || v.page_->size > size_t(st.st_size))
    return Error::make(ErrorKind::System, "control page " + path + ": size: the header says " +
                                              std::to_string(v.page_->size) + " bytes, the file has " +
                                              std::to_string(st.st_size) + " and the counters need " +
                                              std::to_string(kCountersEnd));
  return v;
}

uint64_t ControlPageView::counter(uint32_t index) const {
  if (!page_ || index >= ictl::kMaxCounters) return 0;
  return page_->counters[index].load(std::memory_order_relaxed);
}

Result<InstanceSampler> InstanceSampler::open(const SamplerConfig& config) {
  InstanceSampler s;
  s.cgroup_ = ENVRUN_TRY(CgroupUsageReader::open(config.hierarchies, config.cgroup_path));
  if (!config.control_page.empty()) s.page_ = ENVRUN_TRY(ControlPageView::open(config.control_page));
  s.per_process_ = config.per_process;
  return s;
}

void InstanceSampler::add_cgroup(const CgroupCounters& c, Reading& r) const {
  auto opt = [](const std::optional<uint64_t>& v) -> std::optional<double> {
    return v ? std::optional<double>(double(*v)) : std::nullopt;
  };
  if (c.cpu_user_ns) r.set(Metric::CpuUserSeconds, double(*c.cpu_user_ns) / 1e9);
  if (c.cpu_system_ns) r.set(Metric::CpuSystemSeconds, double(*c.cpu_system_ns) / 1e9);
  if (c.memory_bytes) r.set(Metric::MemoryPeakBytes, double(*c.memory_bytes), opt(c.memory_peak_bytes));
  if (c.tasks) r.set(Metric::ThreadsPeak, double(*c.tasks), opt(c.tasks_peak));
}

void InstanceSampler::add_control_page(Reading& r) const {
  auto c = [&](uint32_t i) { return double(page_.counter(i)); };
  r.set(Metric::FilesOpened, c(ictl::kOpens));
  r.set(Metric::IoBytesRead, c(ictl::kBytesRead));
  r.set(Metric::IoBytesWritten, c(ictl::kBytesWritten));
  r.set(Metric::Connections, c(ictl::kAccepts));
  r.set(Metric::ConnectionsPeak, c(ictl::kConnectionsOpen), c(ictl::kConnectionsPeak));
  r.set(Metric::ProcessesStarted, c(ictl::kProcessesStarted));
  r.set(Metric::NetBytesReceived, c(ictl::kNetBytesReceived));
  r.set(Metric::NetBytesSent, c(ictl::kNetBytesSent));
  r.set(Metric::Transactions, c(ictl::kTransactions));
  r.set(Metric::DistinctPeers, c(ictl::kDistinctPeers));
}

Result<Reading> InstanceSampler::sample() {
  Reading r;
  auto counters = ENVRUN_TRY(cgroup_.read());
  ENVRUN_CHECK(cgroup_.read_pids(pids_));
  r.realtime_ms = clock_ns(CLOCK_REALTIME) / 1'000'000;
  r.monotonic_ns = clock_ns(CLOCK_MONOTONIC);
  add_cgroup(counters, r);
  if (cgroup_.lists_processes()) r.set(Metric::ProcessesPeak, double(pids_.size()));
  if (per_process_) {
    ProcessUsage::Want want{!counters.tasks.has_value(), !page_.valid()};
    ProcessTotals t = procs_.sample(pids_, want);
    r.set(Metric::OpenFilesPeak, double(t.open_fds));
    if (t.threads) r.set(Metric::ThreadsPeak, double(*t.threads));
    if (t.read_bytes) r.set(Metric::IoBytesRead, double(*t.read_bytes));
    if (t.written_bytes) r.set(Metric::IoBytesWritten, double(*t.written_bytes));
  }
  if (page_.valid()) add_control_page(r);
  return r;
}

}  // namespace envrun::billing
