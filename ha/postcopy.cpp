// Post-copy transfer (postcopy.hpp).
#include "ha/postcopy.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>

#include "kernel/fd.hpp"

namespace envrun::ha {

namespace {

uint64_t now_ms() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

Result<void> pread_all(int fd, uint8_t* p, size_t n, uint64_t off, const std::string& name) {
  while (n > 0) {
    ssize_t k = ::pread(fd, p, n, off_t(off));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return Error::sys(name + ": read");
    if (k == 0) return Error::make(ErrorKind::Generic, name + ": short at offset " + std::to_string(off));
    p += k, n -= size_t(k), off += uint64_t(k);
  }
  return ok();
}

Result<void> pwrite_all(int fd, const uint8_t* p, size_t n, uint64_t off, const std::string& name) {
  while (n > 0) {
    ssize_t k = ::pwrite(fd, p, n, off_t(off));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return Error::sys(name + ": write at offset " + std::to_string(off));
    p += k, n -= size_t(k), off += uint64_t(k);
  }
  return ok();
}

// [off, off+len) of fd as Data frames.
Result<void> send_range(Channel& ch, int fd, const std::string& name, uint64_t off, uint64_t len, std::vector<uint8_t>& buf) {
  while (len > 0) {
    size_t n = size_t(std::min<uint64_t>(len, buf.size()));
    ENVRUN_CHECK(pread_all(fd, buf.data(), n, off, name));
    ENVRUN_CHECK(ch.send(FrameType::Data, Bytes(buf.data(), n)));
    off += n, len -= n;
  }
  return ok();
}

Error bad(const Channel& ch, const std::string& what) { return Error::make(ErrorKind::Generic, ch.peer() + ": " + what); }

}  // namespace

Result<uint64_t> send_sparse_image(Channel& ch, int fd, const std::string& name, uint64_t size,
                                   const std::vector<Hole>& holes) {
  nlohmann::json hj = nlohmann::json::array();
  for (const auto& h : holes) hj.push_back({h.off, h.len});
  ENVRUN_CHECK(ch.send_json(FrameType::ImageBegin, {{"round", 0}, {"kind", "full"}}));
  ENVRUN_CHECK(ch.send_json(FrameType::LazyHoles, {{"size", size}, {"holes", hj}}));
  std::vector<uint8_t> buf(ch.max_send());
  uint64_t at = 0, sent = 0;
  for (const auto& h : holes) {
    ENVRUN_CHECK(send_range(ch, fd, name, at, h.off - at, buf));
    sent += h.off - at;
    at = h.off + h.len;
  }
  ENVRUN_CHECK(send_range(ch, fd, name, at, size - at, buf));
  sent += size - at;
  ENVRUN_CHECK(ch.send_json(FrameType::ImageEnd, {{"bytes", size}}));
  return sent;
}

Result<uint64_t> send_postcopy_image(Channel& ch, int in_fd, int keep_fd, const std::string& keep_name,
                                     const HoleFinder& find) {
  std::vector<uint8_t> buf(1 << 20);
  uint64_t size = 0;
  for (;;) {
    ssize_t n = ::read(in_fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("the checkpoint stream");
    if (n == 0) break;
    ENVRUN_CHECK(pwrite_all(keep_fd, buf.data(), size_t(n), size, keep_name));
    size += uint64_t(n);
  }
  UniqueFd rd(::open(keep_name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!rd) return Error::sys(keep_name);
  auto holes = ENVRUN_TRY(find(rd.get(), keep_name));
  return send_sparse_image(ch, rd.get(), keep_name, size, holes);
}

Result<uint64_t> receive_sparse_image(Channel& ch, const nlohmann::json& msg, int out_fd, const std::string& out_name,
                                      uint64_t max_bytes) {
  uint64_t size = msg.value("size", uint64_t(0));
  if (size > max_bytes)
    return Error::make(ErrorKind::Generic, "the image exceeds the agent's limit of " + std::to_string(max_bytes) +
                                               " bytes (--max-image-bytes)");
  std::vector<Hole> holes;
  uint64_t prev_end = 0;
  for (const auto& h : msg.value("holes", nlohmann::json::array())) {
    if (!h.is_array() || h.size() != 2 || !h[0].is_number_unsigned() || !h[1].is_number_unsigned())
      return bad(ch, "lazy-holes message: holes: not [offset, length] pairs");
    Hole x{h[0].get<uint64_t>(), h[1].get<uint64_t>()};
    if (x.off < prev_end || x.off + x.len > size || x.off + x.len < x.off)
      return bad(ch, "lazy-holes message: holes: not sorted, overlapping or past the size");
    holes.push_back(x);
    prev_end = x.off + x.len;
  }
  if (::ftruncate(out_fd, off_t(size)) < 0) return Error::sys(out_name + ": ftruncate");
  size_t next_hole = 0;
  uint64_t at = 0;
  for (;;) {
    Frame f = ENVRUN_TRY(ch.recv());
    if (f.type == FrameType::ImageEnd) {
      auto j = nlohmann::json::parse(f.payload.begin(), f.payload.end(), nullptr, false);
      while (next_hole < holes.size() && at == holes[next_hole].off) at += holes[next_hole++].len;
      if (!j.is_object() || j.value("bytes", uint64_t(0)) != size || at != size)
        return bad(ch, "the image does not match its announced size (" + std::to_string(at) + " of " +
                           std::to_string(size) + " bytes)");
      return size;
    }
    if (f.type != FrameType::Data) return bad(ch, std::string("unexpected ") + frame_type_name(f.type) + " frame in the image");
    size_t used = 0;
    while (used < f.payload.size()) {
      while (next_hole < holes.size() && at == holes[next_hole].off) at += holes[next_hole++].len;
      uint64_t room = (next_hole < holes.size() ? holes[next_hole].off : size) - at;
      if (room == 0) return bad(ch, "more image bytes than announced");
      size_t n = size_t(std::min<uint64_t>(room, f.payload.size() - used));
      ENVRUN_CHECK(pwrite_all(out_fd, f.payload.data() + used, n, at, out_name));
      used += n, at += n;
    }
  }
}

Result<PostcopyStats> serve_page_fetches(Channel& ch, int fd, const std::string& name) {
  for (;;) {
    auto m = ENVRUN_TRY(ch.recv_next(4096));
    auto j = ENVRUN_TRY(m.json());
    if (m.type == FrameType::PagesIn) {
      PostcopyStats s;
      s.ranges = j.value("pages_fetched", uint64_t(0)), s.bytes = j.value("bytes", uint64_t(0));
      s.fault_ranges = j.value("fault_ranges", uint64_t(0)), s.background_ranges = j.value("background_ranges", uint64_t(0));
      s.all_in_ms = j.value("all_in_ms", uint64_t(0));
      s.max_in_flight = j.value("max_in_flight", uint64_t(0));
      return s;
    }
    if (m.type != FrameType::PageFetch) return bad(ch, std::string("expected a page fetch, got ") + frame_type_name(m.type));
    ENVRUN_CHECK(answer_page_fetch(ch, fd, name, j));
  }
}

Result<void> answer_page_fetch(Channel& ch, int fd, const std::string& name, const nlohmann::json& j) {
  uint64_t off = j.value("off", uint64_t(0)), len = j.value("len", uint64_t(0));
  if (len > (64u << 20)) return bad(ch, "page fetch of " + std::to_string(len) + " bytes: more than a section");
  std::vector<uint8_t> buf(ch.max_send());
  ENVRUN_CHECK(send_range(ch, fd, name, off, len, buf));
  return ch.send(FrameType::FetchEnd, {});
}

namespace {

// 16 bytes from the page server, or false at EOF (it is done).
Result<bool> read_request(int fd, uint64_t& off, uint64_t& len) {
  uint8_t req[16];
  size_t got = 0;
  while (got < sizeof req) {
    ssize_t k = ::read(fd, req + got, sizeof req - got);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return Error::sys("page fetch fd: read");
    if (k == 0) {
      if (got == 0) return false;
      return Error::make(ErrorKind::Generic, "page fetch fd: a request cut short");
    }
    got += size_t(k);
  }
  off = len = 0;
  for (int i = 0; i < 8; ++i) off |= uint64_t(req[i]) << (8 * i), len |= uint64_t(req[8 + i]) << (8 * i);
  return true;
}

}  // namespace

namespace {

struct Fetch {
  uint64_t off = 0, len = 0;
  bool fault = false;
};

// One request from fetch_fd passed on as a PageFetch message; false at EOF.
Result<bool> forward_one(Channel& ch, int fetch_fd, std::deque<Fetch>& pending) {
  uint64_t off, len;
  if (!ENVRUN_TRY(read_request(fetch_fd, off, len))) return false;
  bool fault = (len >> 63) != 0;
  len &= ~(1ull << 63);
  ENVRUN_CHECK(ch.send_json(FrameType::PageFetch, {{"off", off}, {"len", len}, {"fault", fault}}));
  pending.push_back({off, len, fault});
  return true;
}

// The answer to the oldest request (the source answers in order): written into the
// image, then its status byte to the page server (unless it is gone: a section it asked
// for ahead and then did not need).
Result<void> take_answer(Channel& ch, int fetch_fd, int image_fd, const std::string& image_name, std::deque<Fetch>& pending,
                         PostcopyStats& s, Frame& f, bool tell = true) {
  Fetch q = pending.front();
  uint64_t at = q.off;
  for (;;) {
    ENVRUN_CHECK(ch.recv_into(f));
    if (f.type == FrameType::FetchEnd) break;
    if (f.type == FrameType::Error) return bad(ch, "an error instead of the pages");
    if (f.type != FrameType::Data || at + f.payload.size() > q.off + q.len)
      return bad(ch, std::string("unexpected ") + frame_type_name(f.type) + " frame in a page fetch");
    ENVRUN_CHECK(pwrite_all(image_fd, f.payload.data(), f.payload.size(), at, image_name));
    at += f.payload.size();
  }
  if (at != q.off + q.len) return bad(ch, "a page fetch answered " + std::to_string(at - q.off) + " of " + std::to_string(q.len) + " bytes");
  uint8_t status = 0;
  if (tell && ::write(fetch_fd, &status, 1) != 1) return Error::sys("page fetch fd: write");
  pending.pop_front();
  ++s.ranges, s.bytes += q.len;
  ++(q.fault ? s.fault_ranges : s.background_ranges);
  return ok();
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

}  // namespace

// Requests are passed on as they come, before the older ones are answered: the source
// answers in order, and the wire stays busy while the page server copies. Returns once
// nothing is in flight.
Result<bool> relay_one(Channel& ch, int fetch_fd, int image_fd, const std::string& image_name, PostcopyStats& s) {
  std::deque<Fetch> pending;
  Frame f;
  bool open = ENVRUN_TRY(forward_one(ch, fetch_fd, pending));
  while (!pending.empty()) {
    while (open && readable(fetch_fd)) open = ENVRUN_TRY(forward_one(ch, fetch_fd, pending));
    s.max_in_flight = std::max<uint64_t>(s.max_in_flight, pending.size());
    ENVRUN_CHECK(take_answer(ch, fetch_fd, image_fd, image_name, pending, s, f, open));
  }
  return open;
}

Result<PostcopyStats> relay_page_fetches(Channel& ch, int fetch_fd, int image_fd, const std::string& image_name,
                                         PostcopyStats s) {
  uint64_t t0 = now_ms();
  while (ENVRUN_TRY(relay_one(ch, fetch_fd, image_fd, image_name, s))) {
  }
  s.all_in_ms = now_ms() - t0;
  ENVRUN_CHECK(ch.send_json(FrameType::PagesIn, {{"pages_fetched", s.ranges}, {"bytes", s.bytes}, {"fault_ranges", s.fault_ranges},
                                                  {"background_ranges", s.background_ranges}, {"all_in_ms", s.all_in_ms},
                                                  {"max_in_flight", s.max_in_flight}}));
  return s;
}

}  // namespace envrun::ha
