// migrate(): the source side's steps and its rollback.
#include "ha/migrate_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "ha/image_transfer.hpp"
#include "kernel/fs.hpp"

namespace envrun::ha {

namespace {

uint64_t now_us() {
  return uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

Result<Channel> open_session(const MigrateOptions& o) {
  auto sock = ENVRUN_TRY(connect_to(o.target, o.timeout_ms));
  ChannelOptions co;
  co.timeout_ms = o.timeout_ms;
  co.peer = o.target.text;
  auto ch = ENVRUN_TRY(Channel::client(std::move(sock), o.psk, co));
  auto welcome = ENVRUN_TRY(ch.recv_json(FrameType::Welcome));
  uint64_t their_max = welcome.value("limits", nlohmann::json::object()).value("max_frame", uint64_t(kDefaultMaxPayload));
  ch.set_max_send(uint32_t(std::clamp<uint64_t>(their_max, 4096, kDefaultMaxPayload)));
  ENVRUN_CHECK(ch.send_json(FrameType::Begin, {{"id", o.id}, {"op", "migrate"}}));
  ENVRUN_CHECK(ch.recv_json(FrameType::Ok));
  return ch;
}

// Steps 4 and 5: after the image was sent, until the target runs the app.
Result<void> restore_on_target(Channel& ch, const MigrateOptions& o, HashCache& cache, MigrateReport& rep) {
  ENVRUN_CHECK(ch.recv_json(FrameType::Ok));  // the image is stored and verified
  auto m = ENVRUN_TRY(build_manifest(o.bundle_dir, cache));
  rep.final_sync = ENVRUN_TRY(send_bundle_round(ch, o.bundle_dir, m, true));
  ENVRUN_CHECK(ch.send(FrameType::Restore, {}));
  for (;;) {  // Busy frames keep the wait alive while the agent restores
    auto msg = ENVRUN_TRY(ch.recv_next());
    if (msg.type == FrameType::Busy) continue;
    if (msg.type != FrameType::Running)
      return Error::make(ErrorKind::Generic, ch.peer() + ": expected a running message, got " + frame_type_name(msg.type));
    auto j = ENVRUN_TRY(msg.json());
    rep.target_pid = j.value("pid", int64_t(0));
    return ok();
  }
}

Error rolled_back(SourceHost& host, const MigrateOptions& o, Error why, bool& keep_work) {
  if (o.note) o.note("rolling back: " + why.message);
  auto r = host.restore_local(o.work_dir);
  keep_work = !r.ok();
  if (!r)
    return Error::make(ErrorKind::Generic, why.message + "; ROLLBACK FAILED: " + r.error().message + "; the image is kept in " +
                                               o.work_dir);
  return Error::make(ErrorKind::Generic, why.message + "; rolled back: " + o.id + " runs on this host again");
}

// The work directory goes on every outcome but one that keeps the image (its path is in the error).
struct WorkDir {
  const std::string& dir;
  bool keep = false;
  ~WorkDir() {
    if (!keep) (void)fs::remove_tree(dir);
  }
};

}  // namespace

Result<MigrateReport> migrate(const MigrateOptions& o, SourceHost& host) {
  WorkDir work{o.work_dir};
  MigrateReport rep;
  uint64_t t0 = now_us();
  auto note = [&](const std::string& s) { if (o.note) o.note(s); };
  auto ch = ENVRUN_TRY(open_session(o));
  HashCache cache;
  auto m = ENVRUN_TRY(build_manifest(o.bundle_dir, cache));
  rep.prefetch = ENVRUN_TRY(send_bundle_round(ch, o.bundle_dir, m, false));
  note("bundle prefetched: " + std::to_string(rep.prefetch.blobs_sent) + " of " + std::to_string(rep.prefetch.files) + " files sent");

  std::string keep_path = o.work_dir + "/envrun.img";
  UniqueFd keep(::open(keep_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!keep) return Error::sys(keep_path);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return Error::sys("pipe");
  UniqueFd pipe_r(p[0]), pipe_w(p[1]);
  ::fcntl(pipe_r.get(), F_SETPIPE_SZ, 1 << 20);
  uint64_t t_stop = now_us();
  if (auto r = host.start_checkpoint(pipe_w.get()); !r) {
    ch.send_error("the checkpoint could not start on the source");
    return std::move(r).error();
  }
  pipe_w.reset();
  auto sent = send_image(ch, pipe_r.get(), keep.get(), keep_path, 1);
  pipe_r.reset();
  auto cp = host.finish_checkpoint();
  if (!cp) {
    ch.send_error("the checkpoint failed on the source");
    if (host.container_running()) return Error::make(ErrorKind::Generic, cp.error().message + " (" + o.id + " runs on)");
    return rolled_back(host, o, std::move(cp).error(), work.keep);
  }
  keep.reset();
  note("checkpoint done: the app is stopped");
  if (!sent) return rolled_back(host, o, std::move(sent).error(), work.keep);
  rep.image_bytes = *sent;
  if (auto r = restore_on_target(ch, o, cache, rep); !r) {
    ch.send_error("migration abandoned: " + r.error().message);
    return rolled_back(host, o, std::move(r).error(), work.keep);
  }
  rep.downtime_us = now_us() - t_stop;
  auto sent_commit = ch.send(FrameType::Commit, {});
  auto ack = sent_commit ? ch.recv_json(FrameType::Committed) : Result<nlohmann::json>(std::move(sent_commit).error());
  work.keep = !ack.ok();
  if (!ack)
    return Error::make(ErrorKind::Generic, ack.error().message + ": the target restored " + o.id +
                                               " but did not confirm the commit: it may run there (the agent deletes "
                                               "it if the commit did not arrive); the image is kept in " + o.work_dir);
  rep.total_us = now_us() - t0;
  rep.wire_sent = ch.bytes_sent(), rep.wire_received = ch.bytes_received();
  return rep;
}

}  // namespace envrun::ha
