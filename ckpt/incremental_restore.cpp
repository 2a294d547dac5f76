// ParentChain (incremental_restore.hpp).
#include "ckpt/incremental_restore.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "ckpt/crc32c.hpp"
#include "ckpt/image_format.hpp"
#include "ckpt/incremental.hpp"
#include "ckpt/infect/infect.hpp"
#include "kernel/fs.hpp"

namespace envrun::ckpt {

namespace {

constexpr size_t kMaxDepth = 64;

Error refuse(const std::string& msg) { return Error::make(ErrorKind::Config, "parent image: " + msg); }

std::string dir_of(const std::string& file) {
  auto slash = file.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : file.substr(0, slash);
}

// inventory["parent"] = {"path": DIR, "track_id": ID}; {"", ""} for a full image.
Result<std::pair<std::string, std::string>> parent_of(const nlohmann::json& inv, const std::string& name) {
  if (!inv.is_object() || !inv.contains("parent")) return std::make_pair(std::string(), std::string());
  try {
    return std::make_pair(inv["parent"].at("path").get<std::string>(), inv["parent"].at("track_id").get<std::string>());
  } catch (const std::exception& e) {
    return Error::make(ErrorKind::Config, name + ": inventory: parent: " + e.what());
  }
}

// The part of `sorted` (normalized: sorted, disjoint) inside `r`, found by binary search:
// a parent's every pages section is looked up in what is needed, which for an app that
// writes scattered pages is thousands of ranges (a full intersect per section, with its
// sorting, made a chain's restore quadratic: 60 s for 256 MiB in five rounds).
PageRanges overlap(const PageRanges& sorted, const PageRange& r) {
  PageRanges out;
  auto it = std::upper_bound(sorted.begin(), sorted.end(), r.start,
                             [](uint64_t at, const PageRange& x) { return at < x.end; });
  for (; it != sorted.end() && it->start < r.end; ++it) out.push_back({std::max(it->start, r.start), std::min(it->end, r.end)});
  return out;
}

}  // namespace

ParentChain::ParentChain() = default;
ParentChain::ParentChain(ParentChain&&) noexcept = default;
ParentChain& ParentChain::operator=(ParentChain&&) noexcept = default;
ParentChain::~ParentChain() = default;

Result<ParentChain> ParentChain::open(const nlohmann::json& inventory, const std::string& image_dir, bool whole) {
  ParentChain chain;
  std::set<std::string> seen;
  std::string child = "the image", dir = image_dir.empty() ? "." : image_dir;
  auto [ref, want_id] = ENVRUN_TRY(parent_of(inventory, child));
  while (!ref.empty()) {
    if (chain.images_.size() >= kMaxDepth)
      return refuse(child + ": a chain of more than " + std::to_string(kMaxDepth) + " images");
    std::string file = fs::join(ref[0] == '/' ? ref : fs::join(dir, ref), kImageFileName);
    char real[PATH_MAX];
    if (!::realpath(file.c_str(), real)) return Error::sys("parent image: " + child + " names " + file);
    if (!seen.insert(real).second) return refuse(file + ": the chain loops back to it");
    Image img{UniqueFd(::open(real, O_RDONLY | O_CLOEXEC)), file};
    if (!img.fd) return Error::sys("parent image: " + file);
    if (whole) {
      auto summary = verify_image(img.fd.get(), file);
      if (!summary) return std::move(summary).error().with_context("parent image of " + child);
    } else {
      auto sections = index_sections(img.fd.get(), file);
      if (!sections) return std::move(sections).error().with_context("parent image of " + child);
      img.sections = std::move(*sections);
    }
    if (::lseek(img.fd.get(), 0, SEEK_SET) < 0) return Error::sys("parent image: " + file + ": seek");
    auto inv = ENVRUN_TRY(read_inventory(img.fd.get(), file));
    std::string id = inv.contains("track") && inv["track"].is_object() ? inv["track"].value("id", "") : "";
    if (id != want_id)
      return refuse(file + ": not the image " + child + " was dumped against (track id " + (id.empty() ? "none" : id) +
                    ", want " + want_id + "): was it taken again since?");
    auto next = ENVRUN_TRY(parent_of(inv, file));
    chain.images_.push_back(std::move(img));
    child = file, dir = dir_of(real), ref = next.first, want_id = next.second;
  }
  return chain;
}

namespace {

// A plain pages section's first 8 bytes: the address of its first page (nullopt for
// another section or a zstd one, which is read whole).
Result<std::optional<uint64_t>> read_address(const SectionHeader& h, ImageReader& in) {
  if (h.section_type() != SectionType::Pages || h.compressed() || h.raw_size <= 8) return std::optional<uint64_t>();
  uint8_t a[8];
  ENVRUN_CHECK(in.read_payload_part(a));
  uint64_t addr;
  std::memcpy(&addr, a, 8);
  return std::optional<uint64_t>(addr);
}

}  // namespace

// scan_image's walk, keeping each section and a plain pages section's address. Nullopt
// when a pages or parent-pages section is compressed: apply() reads that parent with a
// reader of its own.
Result<std::optional<std::vector<ParentChain::Entry>>> ParentChain::index_sections(int fd, const std::string& name) {
  std::vector<Entry> out;
  bool usable = true;
  ENVRUN_CHECK(scan_image(fd, name, [&](const SectionHeader& h, ImageReader& in) -> Result<void> {
    auto type = h.section_type();
    if ((type == SectionType::Pages || type == SectionType::ParentPages) && h.compressed()) usable = false;
    auto addr = ENVRUN_TRY(read_address(h, in));
    out.push_back({h, addr.value_or(0)});
    return ok();
  }));
  if (!usable) return std::optional<std::vector<Entry>>();
  return std::optional<std::vector<Entry>>(std::move(out));
}

// One parent's sections for apply(): from the table index_sections kept (payloads read
// with pread and their crc checked here), or else from a reader.
class ParentChain::Walk {
 public:
  static Result<Walk> open(Image& img) {
    Walk w(img);
    if (!img.sections) {
      if (::lseek(img.fd.get(), 0, SEEK_SET) < 0) return Error::sys("parent image: " + img.name + ": seek");
      w.in_ = ENVRUN_TRY(ImageReader::from_fd(img.fd.get(), img.name));
    }
    return w;
  }
  // The next section; for a plain pages section, its address is read (addr_known).
  Result<std::optional<Entry>> next(bool& addr_known) {
    addr_known = false, part_ = 0;
    if (!in_) {
      if (i_ >= img_->sections->size()) return std::optional<Entry>();
      const Entry& e = (*img_->sections)[i_++];
      cur_ = e.h;
      addr_known = e.h.section_type() == SectionType::Pages && e.h.raw_size > 8;
      return std::optional<Entry>(e);
    }
    auto h = ENVRUN_TRY(in_->next());
    if (!h) return std::optional<Entry>();
    cur_ = *h;
    Entry e{*h, 0};
    if (auto addr = ENVRUN_TRY(read_address(*h, *in_))) {
      e.addr = *addr;
      std::memcpy(head_, &e.addr, 8);
      addr_known = true, part_ = 8;
    }
    return std::optional<Entry>(e);
  }
  // The current section's whole payload (its checksum checked), address included.
  Result<void> read(std::span<uint8_t> out) {
    if (in_) {
      if (part_ == 0) return in_->read_payload(out);
      if (out.size() != cur_.raw_size)
        return Error::make(ErrorKind::Generic, img_->name + ": " + format::label(cur_) + ": buffer of the wrong size");
      std::memcpy(out.data(), head_, part_);
      return in_->read_payload_part(out.subspan(part_));
    }
    ssize_t got = ::pread(img_->fd.get(), out.data(), out.size(), off_t(cur_.offset + kSectionHeaderSize));
    if (got < 0) return Error::sys(img_->name + ": read " + format::label(cur_));
    if (size_t(got) != out.size() || out.size() != cur_.raw_size)
      return Error::make(ErrorKind::Generic, img_->name + ": " + format::label(cur_) + ": payload cut short");
    uint32_t crc = crc32c(out.data(), out.size());
    if (crc != cur_.crc)
      return Error::make(ErrorKind::Generic, img_->name + ": " + format::describe(cur_) + ": payload checksum mismatch (stored " +
                                                 format::hex32(cur_.crc) + ", computed " + format::hex32(crc) + ")");
    return ok();
  }
  // Leaves the current payload unread.
  Result<void> skip() { return in_ ? in_->seek_payload() : ok(); }

 private:
  explicit Walk(Image& img) : img_(&img) {}
  Image* img_;
  std::optional<ImageReader> in_;
  size_t i_ = 0;
  uint64_t part_ = 0;  // bytes of the current payload read by next()
  uint8_t head_[8] = {};
  SectionHeader cur_;
};

Result<void> ParentChain::add_needed(const SectionHeader& h, ImageReader& in) {
  auto bytes = ENVRUN_TRY(in.read_payload());
  auto ranges = ENVRUN_TRY(decode_ranges(bytes, "image: " + format::label(h)));
  if (images_.empty()) return refuse("the image lists pages of a parent but names none");
  auto& into = needed_[h.id];
  into.insert(into.end(), ranges.begin(), ranges.end());
  into = normalized(std::move(into));
  return ok();
}

// One parent: writes what it holds of `needed`; returns what is still needed from its
// own parent (the part of `needed` its parent-pages sections list).
Result<std::map<uint64_t, PageRanges>> ParentChain::apply(Image& img, std::map<uint64_t, PageRanges>& needed,
                                                          const Plan& plan, uint64_t& pages, const DeferPages& defer) {
  std::map<uint64_t, PageRanges> further, found;
  auto walk = ENVRUN_TRY(Walk::open(img));
  std::vector<uint8_t> buf;
  bool addr_known = false;
  for (auto e = ENVRUN_TRY(walk.next(addr_known)); e; e = ENVRUN_TRY(walk.next(addr_known))) {
    const SectionHeader* h = &e->h;
    auto type = h->section_type();
    auto want = needed.find(h->id);
    // Payloads not used are sought over: a parent was verified whole when the chain was
    // opened, or (lazy restore) its payloads are checked by whoever reads them.
    if (want == needed.end() || want->second.empty() || (type != SectionType::Pages && type != SectionType::ParentPages)) {
      ENVRUN_CHECK(walk.skip());
      continue;
    }
    if (type == SectionType::ParentPages) {
      buf.resize(h->raw_size);
      ENVRUN_CHECK(walk.read(buf));
      auto theirs = ENVRUN_TRY(decode_ranges(buf, img.name + ": " + format::label(*h)));
      auto& f = further[h->id];
      auto more = intersect(want->second, theirs);
      f.insert(f.end(), more.begin(), more.end());
      continue;
    }
    if (h->raw_size < 8 || (h->raw_size - 8) % kPageBytes)
      return refuse(img.name + ": " + format::label(*h) + ": not whole pages");
    // The section's address first; its pages are read only if some are written now
    // (a lazy restore's page server reads the deferred ones itself).
    bool have_all = false;
    uint64_t addr = e->addr;
    if (!addr_known) {  // a zstd section is read whole
      buf.resize(h->raw_size);
      ENVRUN_CHECK(walk.read(buf));
      std::memcpy(&addr, buf.data(), 8);
      have_all = true;
    }
    PageRange held{addr, addr + (h->raw_size - 8)};
    auto hit = overlap(want->second, held);
    if (hit.empty()) {
      if (!have_all) ENVRUN_CHECK(walk.skip());
      continue;
    }
    size_t i = plan.index_of(pid_t(h->id));
    if (i == std::string::npos || !plan.procs[i].host_pid)
      return refuse(img.name + ": pages of pid " + std::to_string(h->id) + ", a process the image does not restore");
    PageRanges now;
    for (const auto& r : hit) {
      if (!defer || !ENVRUN_TRY(defer(plan.procs[i], r, img.name, *h, addr))) now.push_back(r);
      pages += r.bytes() / kPageBytes;
    }
    if (!have_all) {
      if (now.empty()) {
        ENVRUN_CHECK(walk.skip());
      } else {
        buf.resize(h->raw_size);
        ENVRUN_CHECK(walk.read(buf));  // checksum checked
      }
    }
    for (const auto& r : now)
      ENVRUN_CHECK(infect::write_mem(plan.procs[i].host_pid, r.start,
                                     std::span<const uint8_t>(buf.data() + 8 + (r.start - addr), r.bytes())));
    auto& f = found[h->id];
    f.insert(f.end(), hit.begin(), hit.end());  // each page is in one section of an image
  }
  for (auto& [pid, hits] : found) needed[pid] = subtract(needed[pid], hits);
  for (auto& [pid, r] : further) r = intersect(r, needed[pid]);  // found here: not needed further up
  return further;
}

Result<uint64_t> ParentChain::write_pages(const Plan& plan, const DeferPages& defer) {
  uint64_t pages = 0;
  auto needed = std::move(needed_);
  for (auto& img : images_) {
    bool any = false;
    for (const auto& [pid, r] : needed) any = any || !r.empty();
    if (!any) break;
    needed = ENVRUN_TRY(apply(img, needed, plan, pages, defer));
  }
  return pages;
}

}  // namespace envrun::ckpt
