// migrate(): the source side's rounds, the restore there, and the rollback.
#include "ha/migrate_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>

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

std::string round_dir(const MigrateOptions& o, uint32_t k) { return o.work_dir + "/r" + std::to_string(k); }

// One round: the checkpoint streamed to the agent. The source keeps no copy of the
// memory: a pre-copy round leaves a stub image of its inventory in round_dir(k) (what
// the next round's checkpoint reads of its parent), the final round holds the stopped
// tree until the outcome is known. Post-copy keeps its final image whole here: the
// target fetches its pages from it.
struct RoundRun {
  std::optional<Error> checkpoint_error;  // the checkpoint did not start or failed
  std::optional<Error> send_error;        // the image did not reach the agent whole
  RoundRecord rec;
  uint64_t started_us = 0;                // the checkpoint was started (our clock)
  uint64_t frozen_from_us = 0;            // when the tree began to freeze (our clock)
  bool pending = false;                   // the checkpoint process was not waited for yet
  bool held = false;                      // it holds the stopped tree until told (the final round)
};

Result<UniqueFd> open_keep(const std::string& dir, const std::string& path) {
  ENVRUN_CHECK(fs::mkdir_p(dir, 0700));
  UniqueFd keep(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!keep) return Error::sys(path);
  return keep;
}

// The checkpoint's end (a held tree killed or let go first): its statistics into the
// record, or its error.
void finish_round(SourceHost& host, RoundRun& rr, bool kill_held) {
  if (!rr.pending) return;
  rr.pending = false;
  if (rr.held) {
    rr.held = false;
    if (auto r = host.release_held(kill_held); !r && !rr.checkpoint_error) rr.checkpoint_error = std::move(r).error();
  }
  auto cp = host.finish_checkpoint();
  uint64_t t_exit = now_us();
  if (!cp) {
    if (!rr.checkpoint_error) rr.checkpoint_error = std::move(cp).error();
    return;
  }
  rr.rec.pages = cp->pages_written, rr.rec.pages_in_parent = cp->pages_in_parent;
  rr.rec.pause_us = cp->freezing_us + cp->frozen_us;
  // (unknown: from the checkpoint's start, an upper bound)
  rr.frozen_from_us = cp->freeze_start_us >= rr.started_us && cp->freeze_start_us <= t_exit ? cp->freeze_start_us
                                                                                           : rr.started_us;
}

void stream_round(Channel& ch, SourceHost& host, const CheckpointSpec& spec, RoundRun& rr, const MigrateOptions& o) {
  bool keep_whole = o.postcopy && !spec.leave_running;
  std::string keep_path = spec.image_dir + "/envrun.img";
  UniqueFd keep;
  if (keep_whole) {
    auto k = open_keep(spec.image_dir, keep_path);
    if (!k) return void(rr.checkpoint_error = std::move(k).error());
    keep = std::move(*k);
  } else if (auto made = fs::mkdir_p(spec.image_dir, 0700); !made) {
    return void(rr.checkpoint_error = std::move(made).error());
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return void(rr.checkpoint_error = Error::sys("pipe"));
  UniqueFd pipe_r(p[0]), pipe_w(p[1]);
  ::fcntl(pipe_r.get(), F_SETPIPE_SZ, 1 << 20);
  rr.started_us = now_us();
  if (auto r = host.start_checkpoint(pipe_w.get(), spec); !r) {
    rr.checkpoint_error = std::move(r).error();
    return;
  }
  rr.pending = true, rr.held = spec.hold;
  pipe_w.reset();
  auto sent = keep_whole ? send_postcopy_image(ch, pipe_r.get(), keep.get(), keep_path, o.postcopy_holes)
                         : send_image(ch, pipe_r.get(), -1, "", rr.rec.round, rr.rec.kind);
  pipe_r.reset();
  // The final round's checkpoint ends its stream once the image is whole and holds the
  // stopped tree: the migration goes on (finish_round once the outcome is known).
  if (!sent) {
    finish_round(host, rr, false);  // a failed checkpoint explains a short image better
    rr.send_error = std::move(sent).error();
    return;
  }
  if (spec.leave_running) finish_round(host, rr, false);
  if (spec.hold)
    if (auto whole = host.image_whole(); !whole) {
      rr.checkpoint_error = std::move(whole).error();
      finish_round(host, rr, false);
      return;
    }
  rr.rec.image_bytes = *sent;
}

RoundRun run_round(Channel& ch, SourceHost& host, const MigrateOptions& o, uint32_t k, bool live) {
  RoundRun rr;
  rr.rec.round = k, rr.rec.live = live, rr.rec.kind = k == 0 ? "full" : "pages";
  CheckpointSpec spec{round_dir(o, k), k == 0 ? std::string() : "../r" + std::to_string(k - 1), live, !live};
  uint64_t t0 = now_us(), wire0 = ch.bytes_sent();
  stream_round(ch, host, spec, rr, o);
  if (!rr.checkpoint_error && !rr.send_error)
    if (auto stored = ch.recv_json(FrameType::Ok); !stored) rr.send_error = std::move(stored).error();
  rr.rec.wall_us = now_us() - t0;
  rr.rec.wire_bytes = ch.bytes_sent() - wire0;
  return rr;
}

// After the final image was stored there, until the target runs the app.
Result<void> restore_on_target(Channel& ch, const MigrateOptions& o, HashCache& cache, MigrateReport& rep) {
  auto m = ENVRUN_TRY(build_manifest(o.bundle_dir, cache));
  if (o.note) o.note("final manifest built");
  rep.final_sync = ENVRUN_TRY(send_bundle_round(ch, o.bundle_dir, m, true));
  if (o.note) o.note("final bundle sync done");
  if (o.before_restore) ENVRUN_CHECK(o.before_restore());
  nlohmann::json how{{"lazy_pages", o.lazy_pages && !rep.round_log.empty() && rep.rounds_live()}};
  if (o.postcopy) how["lazy"] = "remote";
  ENVRUN_CHECK(ch.send_json(FrameType::Restore, how));
  if (o.note) o.note("restore asked");
  for (;;) {  // Busy frames keep the wait alive while the agent restores
    auto msg = ENVRUN_TRY(ch.recv_next());
    if (msg.type == FrameType::Busy) continue;
    if (msg.type == FrameType::PageFetch && o.postcopy) {  // post-copy: the restore reads a section it writes at once
      std::string copy = round_dir(o, 0) + "/envrun.img";
      UniqueFd rd(::open(copy.c_str(), O_RDONLY | O_CLOEXEC));
      if (!rd) return Error::sys(copy);
      ENVRUN_CHECK(answer_page_fetch(ch, rd.get(), copy, ENVRUN_TRY(msg.json())));
      ++rep.post.ranges, rep.post.bytes += ENVRUN_TRY(msg.json()).value("len", uint64_t(0));
      continue;
    }
    if (msg.type != FrameType::Running)
      return Error::make(ErrorKind::Generic, ch.peer() + ": expected a running message, got " + frame_type_name(msg.type));
    auto j = ENVRUN_TRY(msg.json());
    rep.target_pid = j.value("pid", int64_t(0));
    rep.lazy_pages = j.value("lazy_pages", false);
    if (o.note) o.note("running on the target as pid " + std::to_string(rep.target_pid));
    return ok();
  }
}

// The final round failed after the tree stopped: it runs on here (the held tree let go).
Error rolled_back(SourceHost& host, const MigrateOptions& o, RoundRun& rr, Error why) {
  if (o.note) o.note("rolling back: " + why.message);
  finish_round(host, rr, false);
  bool back = host.container_running();
  if (back) host.rolled_back();
  if (!back)
    return Error::make(ErrorKind::Generic, why.message + "; ROLLBACK FAILED: " + o.id + " no longer runs on this host" +
                                               (rr.checkpoint_error ? " (" + rr.checkpoint_error->message + ")" : ""));
  return Error::make(ErrorKind::Generic, why.message + "; rolled back: " + o.id + " runs on this host again");
}

// A pre-copy round failed: the app never stopped (the tree was left running).
Error live_round_failed(Channel& ch, SourceHost& host, const MigrateOptions& o, RoundRun& rr) {
  Error why = rr.checkpoint_error ? std::move(*rr.checkpoint_error) : std::move(*rr.send_error);
  ch.send_error(rr.checkpoint_error ? "the checkpoint failed on the source" : "migration abandoned: " + why.message);
  std::string where = "pre-copy round " + std::to_string(rr.rec.round) + ": ";
  if (host.container_running()) return Error::make(ErrorKind::Generic, where + why.message + " (" + o.id + " runs on)");
  return Error::make(ErrorKind::Generic, where + why.message + " (" + o.id + " no longer runs: it was left running)");
}

// The work directory (stubs, a post-copy image) goes on every outcome.
struct WorkDir {
  const std::string& dir;
  ~WorkDir() { (void)fs::remove_tree(dir); }
};

// Step 3: pre-copy rounds until a stop rule; returns how many were sent.
Result<uint32_t> precopy(Channel& ch, SourceHost& host, const MigrateOptions& o, MigrateReport& rep) {
  rep.stop = StopRule::Disabled;
  if (!o.precopy.enabled || o.precopy.max_rounds == 0) return 0u;
  PrecopyOptions po = o.precopy;
  po.lazy_restore = o.lazy_pages;  // restore_on_target asks for it after live rounds
  for (uint32_t k = 0;; ++k) {
    auto rr = run_round(ch, host, o, k, true);
    if (rr.checkpoint_error || rr.send_error) return live_round_failed(ch, host, o, rr);
    rep.round_log.push_back(rr.rec);
    if (o.note)
      o.note("pre-copy round " + std::to_string(k) + ": " + std::to_string(rr.rec.pages) + " pages, " +
             std::to_string(rr.rec.image_bytes) + " bytes in " + std::to_string(rr.rec.wall_us / 1000) + " ms, app paused " +
             std::to_string(rr.rec.pause_us / 1000) + " ms");
    rep.stop = next_step(rep.round_log, po);
    if (rep.stop != StopRule::None) break;
  }
  rep.predicted = predict_final(rep.round_log, po);
  if (o.note)
    o.note(std::string("pre-copy ends (") + stop_rule_name(rep.stop) + "): final round predicted " +
           std::to_string(rep.predicted.downtime_us() / 1000) + " ms");
  return uint32_t(rep.round_log.size());
}

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

  uint32_t k = ENVRUN_TRY(precopy(ch, host, o, rep));
  auto rr = run_round(ch, host, o, k, false);
  if (rr.checkpoint_error) {  // the image never came whole: the checkpoint let the tree go
    ch.send_error("the checkpoint failed on the source");
    finish_round(host, rr, false);
    return Error::make(ErrorKind::Generic, rr.checkpoint_error->message + " (" + o.id +
                                               (host.container_running() ? " runs on)" : " no longer runs)"));
  }
  note("final image stored there: the app is stopped");
  if (rr.send_error) return rolled_back(host, o, rr, std::move(*rr.send_error));
  if (auto r = restore_on_target(ch, o, cache, rep); !r) {
    ch.send_error("migration abandoned: " + r.error().message);
    return rolled_back(host, o, rr, std::move(r).error());
  }
  uint64_t t_running = now_us(), t_all_in = 0;
  if (o.postcopy) {  // the app runs there; its pages follow (a break: it is killed there, resumed here)
    rep.postcopy = true;
    note("running on the target; its pages follow");
    std::string copy = round_dir(o, k) + "/envrun.img";
    UniqueFd rd(::open(copy.c_str(), O_RDONLY | O_CLOEXEC));
    auto post = rd ? serve_page_fetches(ch, rd.get(), copy) : Result<PostcopyStats>(Error::sys(copy));
    if (!post) {
      ch.send_error("migration abandoned: " + post.error().message);
      return rolled_back(host, o, rr, std::move(post).error().with_context("post-copy"));
    }
    rep.post = *post;
    t_all_in = now_us();
  }
  // The stopped tree here is the fallback until the target keeps the app. A lost answer to
  // the Commit leaves the outcome unknown: the tree is killed (the app may run there).
  auto sent_commit = ch.send(FrameType::Commit, {});
  auto ack = sent_commit ? ch.recv_json(FrameType::Committed) : Result<nlohmann::json>(std::move(sent_commit).error());
  finish_round(host, rr, true);
  if (ack) note("committed: stopped and deleted here");
  rep.round_log.push_back(rr.rec);
  rep.downtime_us = t_running - std::min(t_running, rr.frozen_from_us);
  if (o.postcopy) rep.all_in_us = t_all_in - std::min(t_all_in, rr.frozen_from_us);
  if (!ack)
    return Error::make(ErrorKind::Generic, ack.error().message + ": the target restored " + o.id +
                                               " but did not confirm the commit: it may run there (the agent deletes "
                                               "it if the commit did not arrive); it was stopped here");
  if (rr.checkpoint_error) rep.warnings.push_back("the checkpoint, after its image was whole: " + rr.checkpoint_error->message);
  rep.total_us = now_us() - t0;
  rep.wire_sent = ch.bytes_sent(), rep.wire_received = ch.bytes_received();
  rep.rounds = uint32_t(rep.round_log.size());
  for (const auto& r : rep.round_log) rep.image_bytes += r.image_bytes;
  rep.budget_met = rep.downtime_us <= o.precopy.max_downtime_us;
  return rep;
}

}  // namespace envrun::ha
