// The restore side of the in-process handshake (inproc.hpp): the new instance's page holds
// the barrier up until the restored checkpoint threads have run their restore hooks.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "ckpt/crc32c.hpp"
#include "ckpt/image.hpp"
#include "ckpt/inproc.hpp"
#include "ckpt/inproc_page.hpp"
#include "kernel/fs.hpp"
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

nlohmann::json inproc_of_image(int fd, const std::string& name) {
  off_t here = ::lseek(fd, 0, SEEK_CUR);
  if (here < 0 || ::lseek(fd, 0, SEEK_SET) < 0) return nullptr;
  nlohmann::json out;
  if (auto in = ImageReader::from_fd(fd, name)) {
    auto h = in->next();
    if (h && *h && (*h)->section_type() == SectionType::Inventory) {
      if (auto bytes = in->read_payload()) {
        auto j = nlohmann::json::parse(bytes->begin(), bytes->end(), nullptr, /*allow_exceptions=*/false);
        if (j.is_object() && j.contains("inproc") && j["inproc"].is_object()) out = j["inproc"];
      }
    }
  }
  (void)::lseek(fd, here, SEEK_SET);
  return out;
}

Result<std::optional<InprocRestore>> inproc_restore(const std::string& ctl_path, const nlohmann::json& image_inproc,
                                                    const InprocOptions& o) {
  bool known = image_inproc.is_object();
  if ((known && image_inproc.value("answered", -1L) == 0) || !fs::exists(ctl_path)) return std::optional<InprocRestore>();
  if (known && image_inproc.contains("db_crc32c")) {
    std::string path = inproc_detail::db_next_to(ctl_path);
    auto db = ENVRUN_TRY(fs::read_file(path));
    if (db.size() != image_inproc.value("db_size", uint64_t(0)) ||
        crc32c(db.data(), db.size()) != image_inproc.value("db_crc32c", uint32_t(0)))
      return Error::make(ErrorKind::Config,
                         path + ": differs from the checkpointed instance's intercept.db (" +
                             std::to_string(image_inproc.value("db_size", uint64_t(0))) + " bytes then, " +
                             std::to_string(db.size()) +
                             " now): the restored processes read it as the old one; rules that use ${ID} or "
                             "${STATE} differ under another id");
  }
  return std::optional<InprocRestore>(ENVRUN_TRY(InprocRestore::prepare(ctl_path, o)));
}

std::optional<std::pair<std::string, std::string>> inproc_state_rewrite(const nlohmann::json& image_inproc,
                                                                        const std::string& new_ctl_path) {
  if (!image_inproc.is_object()) return std::nullopt;
  std::string old_ctl = image_inproc.value("control_page", "");
  auto dir_of = [](const std::string& ctl) {  // <state>/intercept/intercept.ctl -> <state>
    size_t a = ctl.find_last_of('/');
    size_t b = a == std::string::npos || a == 0 ? std::string::npos : ctl.find_last_of('/', a - 1);
    return b == std::string::npos ? std::string() : ctl.substr(0, b);
  };
  std::string from = dir_of(old_ctl), to = dir_of(new_ctl_path);
  if (from.empty() || to.empty() || from == to) return std::nullopt;
  return std::make_pair(from, to);
}

}  // namespace envrun::ckpt
