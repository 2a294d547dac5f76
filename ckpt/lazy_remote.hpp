// Post-copy migration (envrun migrate --lazy): the image on the target is sparse. The
// source left out the pages sections' pages (holes); the restore runs with
// --page-fetch-fd FD, an fd to the migration agent. Before any hole is read (by the page
// server, or by the restore itself for a section it writes at once), RemoteFill asks for
// the byte range on that fd and waits until the agent has fetched it from the source and
// written it into the image file:
//   request: off u64, len u64 (little-endian, 16 bytes; len's bit 63 set: a fault waits for it)
//   answer: one status byte (0: written)
// The agent relays each request over the migration channel (ha/lazy_relay.hpp). A range
// that cannot be had (the channel broke, the agent went) is an error: the page server
// then kills the tree (never a zero page in place of a lost one).
#pragma once
#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt {

// Requests may be sent ahead (ask): the agent relays them in order and the answers come
// in that order, so the page server's next sections are on their way while it copies one
// (one request at a time left the wire idle for a round trip per section: 150 MB/s).
class RemoteFill {
 public:
  explicit RemoteFill(UniqueFd fd) : fd_(std::move(fd)) {}
  // [off, off+len) of the image file is there once this returns (asked for at most once).
  Result<void> ensure(uint64_t off, uint64_t len, bool fault = false);
  // Asks for [off, off+len) now and returns; ensure() of it waits for its answer. No-op
  // when it is there or asked already.
  Result<void> ask(uint64_t off, uint64_t len);
  size_t unanswered() const { return pending_.size(); }
  int fd() const { return fd_.get(); }
  uint64_t fetched() const { return fetched_; }

 private:
  Result<void> send_request(uint64_t off, uint64_t len, bool fault);
  Result<void> take_answer();  // the oldest request's status byte
  bool pending(uint64_t off, uint64_t len) const;
  UniqueFd fd_;
  std::set<std::pair<uint64_t, uint64_t>> filled_;  // (off, len) answered
  std::deque<std::pair<uint64_t, uint64_t>> pending_;  // asked, oldest first
  uint64_t fetched_ = 0;
};

// The source side: the byte ranges of an image file that a post-copy migration leaves
// out: every plain pages section's pages (its payload but the leading 8-byte address,
// which the restore reads at once). Section headers are walked, payloads sought over.
struct ByteRange {
  uint64_t off = 0, len = 0;
};
Result<std::vector<ByteRange>> lazy_holes(int fd, const std::string& name);

}  // namespace envrun::ckpt
