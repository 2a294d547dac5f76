// The terminal display of a pull: one line per layer, redrawn in place (cursor up, clear
// line) at most every 100 ms and on each change of state.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "bundle/registry_progress.hpp"
#include "bundle/registry_pull.hpp"

namespace envrun::registry {
namespace {

using Clock = std::chrono::steady_clock;

struct LayerLine {
  std::string digest;
  int64_t done = 0, total = 0;
  int64_t first_done = -1;  // bytes present at the first progress call (a resumed download)
  Clock::time_point first;
  std::string state = "waiting";
  double rate = 0;  // bytes per second of this transfer
};

class TtyProgress : public PullProgress {
 public:
  explicit TtyProgress(int fd) : fd_(fd) {}
  void start(const std::vector<Descriptor>& layers) override {
    for (const auto& l : layers) lines_.push_back({l.digest, 0, l.size});
    redraw(true);
  }
  void transferring(const std::string& digest, int64_t done, int64_t total) override {
    LayerLine* l = find(digest);
    if (!l) return;
    auto now = Clock::now();
    if (l->first_done < 0) l->first_done = done, l->first = now;
    double secs = std::chrono::duration<double>(now - l->first).count();
    if (secs > 0) l->rate = double(done - l->first_done) / secs;
    l->done = done, l->total = total, l->state = "downloading";
    redraw(done == total);
  }
  void fetched(const std::string& digest, bool cached) override {
    LayerLine* l = find(digest);
    if (!l) return;
    l->done = l->total;
    l->state = cached ? "in the store" : "downloaded";
    redraw(true);
  }
  void unpacked(const std::string& digest, uint64_t entries, uint64_t) override {
    for (auto& l : lines_)
      if (l.digest == digest && l.state.rfind("unpacked", 0) != 0) {
        l.state = "unpacked, " + std::to_string(entries) + " entries";
        break;
      }
    redraw(true);
  }
  // The summary is the result line envrun-pull prints on stdout (not repeated here).
  void complete(const PullReport&) override { redraw(true); }
  void failed(const std::string&) override { redraw(true); }

 private:
  LayerLine* find(const std::string& digest) {
    for (auto& l : lines_)
      if (l.digest == digest) return &l;
    return nullptr;
  }
  std::string line(const LayerLine& l) const {
    char buf[200];
    std::string shortd = l.digest.substr(0, 19);  // sha256: + 12 hex
    if (l.state == "downloading")
      std::snprintf(buf, sizeof buf, "%s  %-12s %10s / %-10s %10s/s", shortd.c_str(), l.state.c_str(),
                    human_bytes(double(l.done)).c_str(), human_bytes(double(l.total)).c_str(), human_bytes(l.rate).c_str());
    else
      std::snprintf(buf, sizeof buf, "%s  %-12s %10s", shortd.c_str(), l.state.c_str(), human_bytes(double(l.total)).c_str());
    return buf;
  }
  void redraw(bool force) {
    auto now = Clock::now();
    if (!force && drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    std::string out;
    if (drawn_ && !lines_.empty()) out += "\x1b[" + std::to_string(lines_.size()) + "A";
    for (const auto& l : lines_) out += "\r\x1b[2K" + line(l) + "\n";
    drawn_ = true;
    put(out);
  }
  void put(const std::string& s) {
    for (size_t off = 0; off < s.size();) {
      ssize_t n = ::write(fd_, s.data() + off, s.size() - off);
      if (n <= 0) return;  // a display that cannot be written is not an error of the pull
      off += size_t(n);
    }
  }
  int fd_;
  Clock::time_point last_;
  bool drawn_ = false;
  std::vector<LayerLine> lines_;
};

}  // namespace

std::unique_ptr<PullProgress> make_tty_progress(int fd) { return std::make_unique<TtyProgress>(fd); }

}  // namespace envrun::registry
