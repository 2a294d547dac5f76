// receive_bundle_round: the agent side of a bundle sync round.
#include <map>
#include <optional>

#include "ha/bundle_sync.hpp"

namespace envrun::ha {

namespace {

Error refuse(const Channel& ch, const std::string& why) { return Error::make(ErrorKind::Generic, ch.peer() + ": " + why); }

// One blob: its Blob header arrived; Data frames until `size` bytes.
Result<bool> receive_blob(Channel& ch, const ContentStore& store, const std::string& hex, uint64_t size,
                          const std::string& tmp_dir) {
  auto w = ENVRUN_TRY(BlobWriter::open(store, hex, size, tmp_dir));
  while (w.written() < size) {
    Frame f = ENVRUN_TRY(ch.recv());
    if (f.type != FrameType::Data)
      return refuse(ch, std::string("blob ") + hex + ": a " + frame_type_name(f.type) + " frame after " +
                            std::to_string(w.written()) + " of " + std::to_string(size) + " bytes");
    ENVRUN_CHECK(w.append(f.payload));
  }
  return w.commit();
}

}  // namespace

Result<ReceivedRound> receive_bundle_round(Channel& ch, const nlohmann::json& msg, const ContentStore& store,
                                           const Limits& limits, const std::string& tmp_dir, uint64_t& received) {
  ReceivedRound r;
  if (!msg.is_object() || !msg.contains("manifest")) return refuse(ch, "manifest message: no manifest");
  r.final = msg.value("final", false);
  r.manifest = ENVRUN_TRY(manifest_from_json(msg["manifest"], limits));
  std::map<std::string, uint64_t> need;  // hash -> size, each asked once
  for (const auto& e : r.manifest.entries)
    if (e.kind == EntryKind::File && !need.count(e.sha256) && !store.has(e.sha256)) need.emplace(e.sha256, e.size);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [h, size] : need) list.push_back(h);
  ENVRUN_CHECK(ch.send_json(FrameType::Need, {{"sha256", list}}));
  std::map<std::string, bool> got;  // hash -> stored
  for (;;) {
    auto m = ENVRUN_TRY(ch.recv_next(64 * 1024));
    if (m.type == FrameType::BlobsDone) break;
    if (m.type != FrameType::Blob) return refuse(ch, std::string("unexpected ") + frame_type_name(m.type) + " message during a sync");
    auto j = ENVRUN_TRY(m.json());
    std::string hex = j.value("sha256", std::string());
    uint64_t size = j.value("size", uint64_t(0));
    auto it = need.find(hex);
    if (it == need.end() || got.count(hex)) return refuse(ch, "blob " + hex + ": not asked for");
    if (size != it->second) return refuse(ch, "blob " + hex + ": " + std::to_string(size) + " bytes, the manifest says " + std::to_string(it->second));
    if (received + size > limits.max_bundle_bytes)
      return refuse(ch, "the bundle exceeds the agent's limit of " + std::to_string(limits.max_bundle_bytes) +
                            " bytes (--max-bundle-bytes)");
    received += size;
    bool stored = ENVRUN_TRY(receive_blob(ch, store, hex, size, tmp_dir));
    got[hex] = stored;
    r.blobs += stored, r.bytes += size, r.stale += !stored;
  }
  if (r.final) {
    for (const auto& e : r.manifest.entries)
      if (e.kind == EntryKind::File && !store.has(e.sha256))
        return refuse(ch, e.path + ": its content " + (got.count(e.sha256) ? "changed while it was sent" : "was not sent"));
  }
  if (r.blobs) ENVRUN_CHECK(store.sync());
  return r;
}

}  // namespace envrun::ha
