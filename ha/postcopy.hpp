// Post-copy migration (envrun migrate --lazy): the app runs on the target before its
// private anonymous memory is there.
//   source: ImageBegin {"round": 0, "kind": "full"}, LazyHoles {"size": N, "holes":
//           [[off, len], ...]} (the pages sections' pages, ckpt::lazy_holes), Data frames
//           of every byte outside the holes, in order, ImageEnd {"bytes": N}
//   agent:  a sparse file of N bytes (ftruncate, pwrite); Ok once stored
//   ... Restore {"lazy": "remote"}: `envrun restore --lazy-pages --page-fetch-fd 3`
//   (ckpt/lazy_remote.hpp) ... Running, then for each range the page server asks for:
//   agent:  PageFetch {"off", "len", "fault"}
//   source: Data frames (pread of its local copy), FetchEnd
//   until the page server closes the fd (every page is in): PagesIn {...}; then Commit.
// If the channel breaks after Running, the target's page server cannot get a page and
// kills the tree; the agent deletes the container (no Commit), the source rolls back
// from its complete local copy.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ha/channel.hpp"

namespace envrun::ha {

struct Hole {
  uint64_t off = 0, len = 0;
};

// The holes of an image file (cli: ckpt::lazy_holes; ha does not link the engine).
using HoleFinder = std::function<Result<std::vector<Hole>>(int fd, const std::string& name)>;

// The source's final round: the checkpoint stream (in_fd) written whole to the local
// copy keep_fd (a regular file, keep_name), then sent to the agent without its holes.
Result<uint64_t> send_postcopy_image(Channel& ch, int in_fd, int keep_fd, const std::string& keep_name,
                                     const HoleFinder& holes);

// The source: the image file fd (size bytes) sent without the holes (sorted, disjoint);
// returns the bytes sent.
Result<uint64_t> send_sparse_image(Channel& ch, int fd, const std::string& name, uint64_t size,
                                   const std::vector<Hole>& holes);

// The agent, after the LazyHoles message (its JSON): the rest of the image into out_fd.
Result<uint64_t> receive_sparse_image(Channel& ch, const nlohmann::json& holes_msg, int out_fd,
                                      const std::string& out_name, uint64_t max_bytes);

struct PostcopyStats {
  uint64_t ranges = 0, bytes = 0;
  uint64_t fault_ranges = 0, background_ranges = 0;
  uint64_t all_in_ms = 0;  // from Running until every page was in (the agent's clock)
  uint64_t max_in_flight = 0;  // most requests asked and not yet answered at once
};

// The source: one PageFetch message answered from its copy (fd): Data frames, FetchEnd.
Result<void> answer_page_fetch(Channel& ch, int fd, const std::string& name, const nlohmann::json& fetch);

// The source, after Running: answers PageFetch messages from its copy (fd) until PagesIn.
Result<PostcopyStats> serve_page_fetches(Channel& ch, int fd, const std::string& name);

// The agent: the requests of the restore or its page server on fetch_fd relayed over the
// channel (each passed on as it comes, the answers taken in order), each answer written
// into image_fd and its status byte sent, until none is in flight; false: fetch_fd closed.
Result<bool> relay_one(Channel& ch, int fetch_fd, int image_fd, const std::string& image_name, PostcopyStats& s);

// The agent, after Running: relay_one until fetch_fd is closed (every page is in); then
// PagesIn with s (the requests the restore itself made counted in).
Result<PostcopyStats> relay_page_fetches(Channel& ch, int fetch_fd, int image_fd, const std::string& image_name,
                                         PostcopyStats s = {});

}  // namespace envrun::ha
