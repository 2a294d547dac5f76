// The restore side of the in-process handshake (inproc.hpp): the new instance's page holds
// the barrier up until the restored checkpoint threads have run their restore hooks.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "ckpt/image.hpp"
#include "ckpt/inproc.hpp"
#include "ckpt/inproc_page.hpp"
#include "kernel/log.hpp"

namespace envrun::ckpt {

using inproc_detail::ControlPageMap;

Result<InprocRestore> InprocRestore::prepare(const std::string& ctl_path, const InprocOptions& o) {
  InprocRestore r;
  r.opts_ = o;
  r.page_ = std::make_unique<ControlPageMap>(ENVRUN_TRY(ControlPageMap::open(ctl_path)));
  r.page_->word(ictl::kCkptLease).store(o.lease_ms);
  r.page_->word(ictl::kCkptAcks).store(uint64_t(ictl::kCkptRestoreTag) << 32);
  r.page_->word(ictl::kBarrierFlag).store(1);
  return r;
}

InprocRestore::InprocRestore(InprocRestore&& o) noexcept
    : page_(std::move(o.page_)), opts_(o.opts_), lifted_(std::exchange(o.lifted_, true)) {}

InprocRestore& InprocRestore::operator=(InprocRestore&& o) noexcept {
  if (this != &o) {
    lift();
    page_ = std::move(o.page_);
    opts_ = o.opts_;
    lifted_ = std::exchange(o.lifted_, true);
  }
  return *this;
}

InprocRestore::~InprocRestore() { lift(); }

void InprocRestore::lift() {
  if (lifted_ || !page_) return;
  lifted_ = true;
  page_->word(ictl::kBarrierFlag).store(0);
  page_->wake(ictl::kBarrierFlag);
}

size_t InprocRestore::finish(pid_t root, long expected) {
  if (!page_ || lifted_) return 0;
  if (expected < 0) expected = long(find_intercepted(root).size());
  uint32_t got = page_->wait_acks(ictl::kCkptRestoreTag, uint32_t(expected), opts_.timeout_ms);
  if (got < uint32_t(expected))
    log::warn("in-process restore: " + std::to_string(uint32_t(expected) - got) + " of " + std::to_string(expected) +
              " processes did not run their restore hooks within " + std::to_string(opts_.timeout_ms) +
              " ms: their hooked calls go on without them");
  lift();
  return got;
}

long inproc_answered_in_image(int fd, const std::string& name) {
  off_t here = ::lseek(fd, 0, SEEK_CUR);
  if (here < 0 || ::lseek(fd, 0, SEEK_SET) < 0) return -1;
  long out = -1;
  if (auto in = ImageReader::from_fd(fd, name)) {
    auto h = in->next();
    if (h && *h && (*h)->section_type() == SectionType::Inventory) {
      if (auto bytes = in->read_payload()) {
        auto j = nlohmann::json::parse(bytes->begin(), bytes->end(), nullptr, /*allow_exceptions=*/false);
        if (j.is_object() && j.contains("inproc") && j["inproc"].is_object())
          out = j["inproc"].value("answered", -1L);
      }
    }
  }
  (void)::lseek(fd, here, SEEK_SET);
  return out;
}

}  // namespace envrun::ckpt
