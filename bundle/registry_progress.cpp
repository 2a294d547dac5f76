// make_progress, human_bytes, and the --json display: one object per line on stdout,
// flushed at once; progress events at most every 100 ms per layer, the final one always.
#include "bundle/registry_progress.hpp"

#include <unistd.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "bundle/registry_pull.hpp"

namespace envrun::registry {

std::string human_bytes(double b) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kMinInterval = std::chrono::milliseconds(100);

class JsonProgress : public PullProgress {
 public:
  explicit JsonProgress(std::FILE* out) : out_(out) {}
  void start(const std::vector<Descriptor>& layers) override {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& l : layers) {
      last_[l.digest] = {};
      list.push_back({{"digest", l.digest}, {"size", l.size}});
    }
    emit({{"event", "start"}, {"layers", layers.size()}, {"descriptors", list}});
  }
  void transferring(const std::string& digest, int64_t done, int64_t total) override {
    auto it = last_.find(digest);
    if (it == last_.end()) return;
    auto now = Clock::now();
    if (done != total && it->second != Clock::time_point{} && now - it->second < kMinInterval) return;
    it->second = now;
    emit({{"event", "progress"}, {"digest", digest}, {"done", done}, {"total", total}});
  }
  void fetched(const std::string& digest, bool cached) override {
    if (last_.count(digest)) emit({{"event", "done"}, {"digest", digest}, {"cached", cached}});
  }
  void unpacked(const std::string& digest, uint64_t entries, uint64_t bytes) override {
    emit({{"event", "unpacked"}, {"digest", digest}, {"entries", entries}, {"bytes", bytes}});
  }
  void complete(const PullReport& r) override {
    emit({{"event", "complete"},
          {"bundle", r.bundle},
          {"manifest", r.manifest_digest},
          {"layers", r.layers},
          {"downloaded", r.downloaded},
          {"bytes", r.bytes},
          {"cached", r.reused}});
  }
  void failed(const std::string& message) override { emit({{"event", "error"}, {"message", message}}); }

 private:
  void emit(const nlohmann::json& j) {
    // Invalid UTF-8 (a path from a layer) is replaced, never thrown.
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
  }
  std::FILE* out_;
  std::map<std::string, Clock::time_point> last_;  // last progress event per layer
};

}  // namespace

std::unique_ptr<PullProgress> make_json_progress(std::FILE* out) { return std::make_unique<JsonProgress>(out); }

std::unique_ptr<PullProgress> make_progress(ProgressMode mode) {
  if (mode == ProgressMode::Json) return make_json_progress(stdout);
  if (mode == ProgressMode::Auto && ::isatty(STDERR_FILENO)) return make_tty_progress(STDERR_FILENO);
  return std::make_unique<PullProgress>();
}

}  // namespace envrun::registry
