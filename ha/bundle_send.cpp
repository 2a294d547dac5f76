// send_bundle_round: the client side of a bundle sync round.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <vector>

#include "ha/bundle_sync.hpp"
#include "kernel/fs.hpp"

namespace envrun::ha {

namespace {

// An agent that gave up (disk full, a limit) says why in an Error frame: read it.
Result<void> check_agent(Channel& ch) {
  if (!ch.input_pending()) return ok();
  auto m = ENVRUN_TRY(ch.recv_next());
  return Error::make(ErrorKind::Generic, ch.peer() + ": unexpected " + frame_type_name(m.type) + " message during a sync");
}

Result<UniqueFd> open_beneath(int root, const std::string& rel, const std::string& shown) {
  open_how how{};
  how.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how);
  if (fd < 0) return Error::sys(shown);
  return UniqueFd(int(fd));
}

// The announced size exactly: a file that shrank meanwhile is padded with zeros (its
// digest then differs and the agent drops it), one that grew is cut.
Result<void> send_blob(Channel& ch, int root, const std::string& bundle_dir, const ManifestEntry& e,
                       std::vector<uint8_t>& buf) {
  std::string shown = fs::join(bundle_dir, e.path);
  UniqueFd fd = ENVRUN_TRY(open_beneath(root, e.path, shown));
  ENVRUN_CHECK(ch.send_json(FrameType::Blob, {{"sha256", e.sha256}, {"size", e.size}}));
  uint64_t left = e.size;
  bool eof = false;
  while (left > 0) {
    size_t want = size_t(std::min<uint64_t>(left, buf.size()));
    size_t got = 0;
    while (!eof && got < want) {
      ssize_t n = ::read(fd.get(), buf.data() + got, want - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::sys(shown);
      if (n == 0) eof = true;
      got += size_t(n);
    }
    if (got < want) std::fill(buf.begin() + long(got), buf.begin() + long(want), 0);
    ENVRUN_CHECK(ch.send(FrameType::Data, Bytes(buf.data(), want)));
    left -= want;
  }
  return check_agent(ch);
}

}  // namespace

Result<SyncStats> send_bundle_round(Channel& ch, const std::string& bundle_dir, const Manifest& m, bool final) {
  SyncStats st;
  st.files = m.file_count();
  ENVRUN_CHECK(ch.send_json(FrameType::Manifest, {{"final", final}, {"manifest", manifest_to_json(m)}}));
  auto need = ENVRUN_TRY(ch.recv_json(FrameType::Need, 64u << 20));
  if (!need.is_object() || !need.contains("sha256") || !need["sha256"].is_array())
    return Error::make(ErrorKind::Generic, ch.peer() + ": need message: expected {\"sha256\": [...]}");
  std::map<std::string, const ManifestEntry*> by_hash;
  for (const auto& e : m.entries)
    if (e.kind == EntryKind::File) by_hash.emplace(e.sha256, &e);
  UniqueFd root(::open(bundle_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return Error::sys(bundle_dir);
  std::vector<uint8_t> buf(ch.max_send());
  for (const auto& h : need["sha256"]) {
    auto it = h.is_string() ? by_hash.find(h.get<std::string>()) : by_hash.end();
    if (it == by_hash.end()) return Error::make(ErrorKind::Generic, ch.peer() + ": asked for content not in the manifest");
    ENVRUN_CHECK(send_blob(ch, root.get(), bundle_dir, *it->second, buf));
    st.blobs_sent++, st.bytes_sent += it->second->size;
  }
  ENVRUN_CHECK(ch.send(FrameType::BlobsDone, {}));
  auto msg = ENVRUN_TRY(ch.recv_next());
  while (msg.type == FrameType::Busy) msg = ENVRUN_TRY(ch.recv_next());  // the agent builds the bundle
  if (msg.type != FrameType::Synced)
    return Error::make(ErrorKind::Generic, ch.peer() + ": expected a synced message, got " + frame_type_name(msg.type));
  auto done = ENVRUN_TRY(msg.json());
  st.stale = done.value("stale", uint64_t(0));
  return st;
}

}  // namespace envrun::ha
