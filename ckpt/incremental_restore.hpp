// Incremental checkpoints, restore side (envrun-image(5) INCREMENTAL IMAGES).
//
// An incremental image holds the pages written since its parent and, in parent-pages
// sections, the ranges whose contents are those of the parent image. Restore maps the
// image's layout, writes its own pages, then takes each listed page from the nearest
// image up the chain that holds it (a parent's own parent-pages sections say which
// ranges to look for further up). A range no image holds was a zero page (or an
// unmodified file page) when the chain's full image was taken: the fresh mapping
// already reads so.
//
// Every parent is opened and verified whole (checksums, End section) and checked to be
// the very image its child was dumped against (the "track" id) before anything is
// restored: a missing, corrupt or re-taken parent refuses the restore. A lazy restore
// walks the parents' headers only (scan_image's checks) and keeps them for the page pass:
// reading every payload of a 1 GiB parent before the app runs was most of a migration's
// downtime, and each payload is checked anyway by whoever reads it (the restore, or the
// page server, which kills the tree on a damaged one rather than let it run).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ckpt/image.hpp"
#include "ckpt/page_ranges.hpp"
#include "ckpt/restore_plan.hpp"
#include "kernel/fd.hpp"

namespace envrun::ckpt {

// The file an image directory holds (--image-path DIR, --parent-path DIR).
inline constexpr const char* kImageFileName = "envrun.img";

class ParentChain {
 public:
  // Follows inventory["parent"]["path"] (relative to `image_dir`, the directory of the
  // image being restored; each parent's own parent relative to that parent's
  // directory) up to a full image. An empty chain for a full image.
  // `whole`: verify_image() of each parent, else scan_image() (lazy restore).
  static Result<ParentChain> open(const nlohmann::json& inventory, const std::string& image_dir, bool whole = true);
  ParentChain();
  ParentChain(ParentChain&&) noexcept;
  ParentChain& operator=(ParentChain&&) noexcept;
  ~ParentChain();

  bool empty() const { return images_.empty(); }
  size_t depth() const { return images_.size(); }
  // A parent-pages section of the image being restored, met in its page pass.
  Result<void> add_needed(const SectionHeader& h, ImageReader& in);
  // Lazy restore: takes pages `r` of process `pp`, held by pages section `h` (first page
  // at sec_addr) of parent image `image`, for the page server (true), or leaves them to
  // be written now (false).
  using DeferPages = std::function<Result<bool>(const ProcPlan& pp, const PageRange& r, const std::string& image,
                                                const SectionHeader& h, uint64_t sec_addr)>;
  // Writes every listed page from the nearest parent holding it into the restored
  // processes (plan.procs[].host_pid), but those `defer` takes. Returns the number of
  // pages written or taken.
  Result<uint64_t> write_pages(const Plan& plan, const DeferPages& defer = {});

 private:
  // A lazy restore walks each parent's headers once, at open(), and keeps them: apply()
  // then reads no header again (on a round of 20k scattered one-page sections, the second
  // walk was a third of the restore).
  struct Entry {
    SectionHeader h;
    uint64_t addr = 0;  // a plain pages section's first page
  };
  struct Image {
    UniqueFd fd;
    std::string name;
    std::optional<std::vector<Entry>> sections;  // lazy restore: every section, in order
  };
  static Result<std::optional<std::vector<Entry>>> index_sections(int fd, const std::string& name);
  class Walk;  // one parent's sections for apply(): from `sections`, or read again
  Result<std::map<uint64_t, PageRanges>> apply(Image& img, std::map<uint64_t, PageRanges>& needed, const Plan& plan,
                                               uint64_t& pages, const DeferPages& defer);
  std::vector<Image> images_;  // nearest first
  std::map<uint64_t, PageRanges> needed_;  // image pid -> ranges the parents must supply
};

}  // namespace envrun::ckpt
