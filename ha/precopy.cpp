// Pre-copy stop rules and the downtime prediction (precopy.hpp).
#include "ha/precopy.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace envrun::ha {

CheckpointStats parse_dump_stats(const std::string& text) {
  CheckpointStats s;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(0, key.find_first_not_of(' '));
    uint64_t v = std::strtoull(line.c_str() + colon + 1, nullptr, 10);
    if (key == "freezing time") s.freezing_us = v;
    else if (key == "frozen time") s.frozen_us = v;
    else if (key == "pages written") s.pages_written = v;
    else if (key == "pages in parent") s.pages_in_parent = v;
    else if (key == "image bytes") s.image_bytes = v;
    else if (key == "freeze start") s.freeze_start_us = v;
  }
  return s;
}

const char* stop_rule_name(StopRule r) {
  switch (r) {
    case StopRule::None: return "none";
    case StopRule::Disabled: return "disabled";
    case StopRule::FewPages: return "few-pages";
    case StopRule::Budget: return "budget";
    case StopRule::NoProgress: return "no-progress";
    case StopRule::MaxRounds: return "max-rounds";
  }
  return "?";
}

Prediction predict_final(const std::vector<RoundRecord>& done, const PrecopyOptions& o) {
  Prediction p;
  if (done.empty()) return p;
  const RoundRecord& first = done.front();
  const RoundRecord& last = done.back();
  // wall = fixed + bytes * per_byte, through round 0 (large) and the latest round (small)
  double per_byte = first.image_bytes ? double(first.wall_us) / double(first.image_bytes) : 0.0;
  if (done.size() > 1 && first.image_bytes > last.image_bytes && first.wall_us > last.wall_us)
    per_byte = double(first.wall_us - last.wall_us) / double(first.image_bytes - last.image_bytes);
  double fixed = double(last.wall_us) - per_byte * double(last.image_bytes);
  p.fixed_us = uint64_t(std::max(0.0, fixed));
  p.transfer_us = uint64_t(per_byte * double(last.image_bytes));
  uint64_t read = last.image_bytes;  // the final image, taken as large as the latest round's
  if (!o.lazy_restore)
    for (const auto& r : done) read += r.image_bytes;  // and every parent's pages
  p.restore_us = (o.lazy_restore ? o.lazy_restore_fixed_us : o.restore_fixed_us) +
                 (o.restore_bytes_per_s ? read * 1000000 / o.restore_bytes_per_s : 0);
  return p;
}

StopRule next_step(const std::vector<RoundRecord>& done, const PrecopyOptions& o) {
  if (!o.enabled) return StopRule::Disabled;
  if (done.size() >= o.max_rounds) return StopRule::MaxRounds;
  if (done.size() < 2) return StopRule::None;  // round 0 sent everything: its dirty set is unknown
  const RoundRecord& last = done.back();
  const RoundRecord& prev = done[done.size() - 2];
  if (last.pages < o.min_pages) return StopRule::FewPages;
  if (predict_final(done, o).downtime_us() <= o.max_downtime_us) return StopRule::Budget;
  if (double(last.pages) > (1.0 - o.min_progress) * double(prev.pages)) return StopRule::NoProgress;
  return StopRule::None;
}

}  // namespace envrun::ha
