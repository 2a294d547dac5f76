// serve_session: the steps of an incoming migration and the cleanup of a failed one.
#include "agent/session.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <mutex>
#include <optional>

#include "ha/bundle_sync.hpp"
#include "ha/content_store.hpp"
#include "ha/image_transfer.hpp"
#include "ha/materialize.hpp"
#include "ha/postcopy.hpp"
#include "ha/subprocess.hpp"
#include "kernel/fs.hpp"
#include "runtime/state.hpp"

namespace envrun::agent {

namespace {

using ha::FrameType;

uint64_t now_ms() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

Result<void> rename_into(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) < 0) return Error::sys(to);
  return ok();
}

// Incoming migrations run one at a time (the server gives every connection a thread of its
// own, so that a drain, a handshake or a stalled peer never holds the others): the content
// store, the staging directories and the restores are not shared between migrations.
std::mutex& incoming_mutex() {
  static std::mutex m;
  return m;
}

class Incoming {
 public:
  Incoming(ha::Channel& ch, const AgentConfig& cfg) : ch_(ch), cfg_(cfg), store_(cfg.root.blobs()) {}
  ~Incoming() { cleanup(); }  // before serial_ lets the next migration in

  Result<std::string> run() {
    ENVRUN_CHECK(begin());
    if (other_op_) return *other_op_;
    for (;;) {
      auto msg = ENVRUN_TRY(ch_.recv_next(cfg_.limits.max_manifest_bytes + 4096));
      if (msg.type == FrameType::Manifest) {
        ENVRUN_CHECK(bundle_round(ENVRUN_TRY(msg.json())));
      } else if (msg.type == FrameType::ImageBegin) {
        ENVRUN_CHECK(image(ENVRUN_TRY(msg.json())));
      } else if (msg.type == FrameType::Restore) {
        ENVRUN_CHECK(restore(msg.bytes.empty() ? nlohmann::json::object() : ENVRUN_TRY(msg.json())));
        if (fetch_) ENVRUN_CHECK(pages_in());
        break;
      } else {
        return Error::make(ErrorKind::Generic, std::string("unexpected ") + ha::frame_type_name(msg.type) + " message");
      }
    }
    ENVRUN_CHECK(await_commit());
    return id_ + ": running as pid " + std::to_string(pid_);
  }

  const std::string& id() const { return id_; }

 private:
  std::unique_lock<std::mutex> serial_;   // incoming_mutex(), from the Begin on
  std::optional<std::string> other_op_;  // the outcome of a Begin op other than migrate (serve_op)
  std::string prebuilt_;                  // the manifest (JSON) staging/bundle.pre was built from
  void log(const std::string& s) const {
    if (cfg_.log) cfg_.log((id_.empty() ? ch_.peer() : id_) + ": " + s);
  }

  Result<void> begin() {
    ENVRUN_CHECK(ch_.send_json(FrameType::Welcome, {{"agent", std::string("envrun ") + ENVRUN_VERSION},
                                                    {"limits", {{"max_frame", cfg_.limits.max_frame},
                                                                {"max_bundle_bytes", cfg_.limits.max_bundle_bytes},
                                                                {"max_image_bytes", cfg_.limits.max_image_bytes}}}}));
    auto j = ENVRUN_TRY(ch_.recv_json(FrameType::Begin, 4096));
    if (j.value("op", std::string()) != "migrate" && cfg_.serve_op) {
      other_op_ = ENVRUN_TRY(cfg_.serve_op(ch_, j));
      return ok();
    }
    std::string id = j.value("id", std::string());
    ENVRUN_CHECK(runtime::StateStore::validate_id(id));
    if (j.value("op", std::string()) != "migrate") return Error::make(ErrorKind::Generic, "begin: unknown op");
    serial_ = std::unique_lock<std::mutex>(incoming_mutex(), std::try_to_lock);
    if (!serial_.owns_lock()) {
      log(id + ": waits for the migration under way");
      serial_ = std::unique_lock<std::mutex>(incoming_mutex());
    }
    if (fs::exists(runtime::StateStore(cfg_.root.state()).dir(id)))
      return Error::make(ErrorKind::State, "container " + id + " already exists on this host");
    id_ = id;
    std::array<uint8_t, 6> rnd{};
    ENVRUN_CHECK(ha::random_bytes(rnd));
    staging_ = cfg_.root.incoming() + "/" + id_ + "." + ha::to_hex(ha::Bytes(rnd.data(), rnd.size()));
    ENVRUN_CHECK(fs::mkdir_p(staging_ + "/tmp", 0700));
    image_staging_ = cfg_.root.image_incoming() + "/" + id_ + "." + ha::to_hex(ha::Bytes(rnd.data(), rnd.size()));
    if (image_staging_ != staging_) ENVRUN_CHECK(fs::mkdir_p(image_staging_, 0700));
    log("migration from " + ch_.peer() + " begins");
    return ch_.send_json(FrameType::Ok, nlohmann::json::object());
  }

  Result<void> bundle_round(const nlohmann::json& msg) {
    auto r = ENVRUN_TRY(ha::receive_bundle_round(ch_, msg, store_, cfg_.limits, staging_ + "/tmp", received_));
    // The bundle is built once its prefetch is in (while the app still runs there); the
    // final sync reuses it when its manifest is the same, else builds it again.
    std::string dest = staging_ + (r.final ? "/bundle" : "/bundle.pre"), pre = staging_ + "/bundle.pre";
    std::string listed = ha::manifest_to_json(r.manifest).dump();
    ENVRUN_CHECK(fs::remove_tree(dest));
    bool reused = r.final && fs::exists(pre) && listed == prebuilt_;
    if (reused) {
      ENVRUN_CHECK(rename_into(pre, dest));
    } else {
      if (r.final) ENVRUN_CHECK(fs::remove_tree(pre));
      uint64_t last = now_ms();
      auto built = ha::materialize(r.manifest, store_, dest, [&] {
        if (now_ms() - last >= 2000) (void)ch_.send(FrameType::Busy, {}), last = now_ms();
      });
      if (!built && !r.final) (void)fs::remove_tree(dest);  // the final sync builds it then
      else ENVRUN_CHECK(std::move(built));
      prebuilt_ = r.final || !built ? std::string() : listed;
    }
    if (r.final) {
      have_bundle_ = true;
    }
    log(std::string("bundle ") + (r.final ? "synced" : "prefetched") + ": " + std::to_string(r.manifest.file_count()) +
        " files, " + std::to_string(r.blobs) + " received (" + std::to_string(r.bytes) + " bytes)" +
        (r.stale ? ", " + std::to_string(r.stale) + " stale" : "") + (reused ? ", built at the prefetch" : ""));
    return ch_.send_json(FrameType::Synced, {{"files", r.manifest.file_count()}, {"blobs", r.blobs}, {"bytes", r.bytes}, {"stale", r.stale}});
  }

  // Memory round R (ha/image_transfer.hpp) into STAGING/image/rR/envrun.img: round 0 a
  // full image, then "pages" rounds whose parent is the round before (../rR-1).
  Result<void> image(const nlohmann::json& begin) {
    uint32_t round = begin.value("round", uint32_t(0));
    std::string kind = begin.value("kind", std::string());
    if (round != rounds_ || (round == 0) != (kind == "full") || (kind != "full" && kind != "pages"))
      return Error::make(ErrorKind::Generic, "image-begin: round " + std::to_string(round) + " of kind \"" + kind +
                                                 "\" after " + std::to_string(rounds_) + " rounds (want round " +
                                                 std::to_string(rounds_) + ", " + (rounds_ ? "pages" : "full") + ")");
    std::string dir = image_staging_ + "/image/r" + std::to_string(round), partial = image_staging_ + "/envrun.img.partial";
    UniqueFd out(::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out) return Error::sys(partial);
    // No fsync: the image lives only until its restore, and a crash ends the migration
    // anyway (the next agent sweeps incoming/); its checksums are checked by the restore.
    // The bound is on all rounds together.
    uint64_t n = ENVRUN_TRY(ha::receive_image(ch_, out.get(), partial, cfg_.limits.max_image_bytes - image_bytes_));
    ENVRUN_CHECK(fs::mkdir_p(dir, 0700));
    ENVRUN_CHECK(rename_into(partial, dir + "/envrun.img"));
    ++rounds_, image_bytes_ += n;
    log("image round " + std::to_string(round) + " (" + kind + ") received: " + std::to_string(n) + " bytes");
    return ch_.send_json(FrameType::Ok, {{"bytes", n}});
  }

  // Whether `envrun restore` takes --lazy-pages (its help names it); asked once.
  bool restore_has_lazy_pages() const {
    static int known = -1;
    if (known >= 0) return known == 1;
    known = 0;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return false;
    UniqueFd r(p[0]), w(p[1]);
    auto c = ha::Child::spawn({{ha::self_exe(), "restore", "--help"}, {{w.get(), 1}}});
    w.reset();
    std::string out;
    char buf[4096];
    for (ssize_t n; c && (n = ::read(r.get(), buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
    if (c) (void)c->wait();
    known = out.find("--lazy-pages") != std::string::npos ? 1 : 0;
    return known == 1;
  }

  std::vector<std::string> envrun(std::initializer_list<std::string> args) const {
    std::vector<std::string> argv{ha::self_exe(), "--root", cfg_.root.state()};
    argv.insert(argv.end(), cfg_.envrun_globals.begin(), cfg_.envrun_globals.end());
    argv.insert(argv.end(), args);
    return argv;
  }

  // Restore {"lazy_pages": true} (a pre-copied migration): `restore --lazy-pages` when this
  // envrun has it: the app runs before its memory is in, a page server fills it from the
  // local chain (it holds the image files open: images/ID may go once the restore ran).
  Result<void> restore(const nlohmann::json& how) {
    if (!have_bundle_ || rounds_ == 0) return Error::make(ErrorKind::Generic, "restore before the bundle and the image arrived");
    std::string bundle = cfg_.root.bundle(id_), image = cfg_.root.image(id_);
    ENVRUN_CHECK(fs::remove_tree(bundle));  // a stale one of a container that is gone (begin checked)
    ENVRUN_CHECK(fs::remove_tree(image));
    bundle_placed_ = true;
    ENVRUN_CHECK(rename_into(staging_ + "/bundle", bundle));
    image_placed_ = true;
    ENVRUN_CHECK(rename_into(image_staging_ + "/image", image));
    uint64_t t0 = now_ms();
    ENVRUN_CHECK(fs::write_file(image + "/uncommitted", id_ + "\n", O_CREAT | O_TRUNC));  // until the Commit (delete_uncommitted)
    restored_ = true;
    std::string last = image + "/r" + std::to_string(rounds_ - 1);  // its parents beside it
    auto argv = envrun({"restore", id_, "-b", bundle, "--image-path", last, "-d"});
    bool remote = how.is_object() && how.value("lazy", std::string()) == "remote";  // post-copy
    bool lazy = remote || (how.is_object() && how.value("lazy_pages", false) && restore_has_lazy_pages());
    if (lazy) argv.push_back("--lazy-pages");
    UniqueFd fetch_theirs;
    if (remote) ENVRUN_CHECK(open_fetch(last + "/envrun.img", argv, fetch_theirs));
    std::vector<std::pair<int, int>> fds;
    if (remote) fds.emplace_back(fetch_theirs.get(), 3);
    auto child = ENVRUN_TRY(ha::Child::spawn({argv, fds}));
    fetch_theirs.reset();
    bool peer_gone = false;
    auto tick = [&] {
      if (!peer_gone) peer_gone = !ch_.send(FrameType::Busy, {});
      if (now_ms() - t0 > uint64_t(cfg_.restore_timeout_ms)) ::kill(child.pid(), SIGKILL);
    };
    int status = ENVRUN_TRY(wait_relaying(child, tick));
    if (status != 0) return Error::make(ErrorKind::Generic, "restore: " + child.failure_text(status));
    runtime::StateStore st(cfg_.root.state());
    auto s = ENVRUN_TRY(st.load(id_));
    if (st.status(s) != runtime::Status::Running)
      return Error::make(ErrorKind::State, std::string("restored, but it is ") + runtime::status_name(st.status(s)));
    pid_ = s.pid;
    log("restored as pid " + std::to_string(pid_) + " in " + std::to_string(now_ms() - t0) + " ms" +
        (lazy ? " (lazy pages)" : ""));
    return ch_.send_json(FrameType::Running, {{"pid", pid_}, {"restore_ms", now_ms() - t0}, {"lazy_pages", lazy}});
  }

  // Post-copy: the fd pair for `restore --page-fetch-fd 3`, the sparse image opened for the answers.
  Result<void> open_fetch(const std::string& image, std::vector<std::string>& argv, UniqueFd& theirs) {
    if (rounds_ != 1 || !restore_has_lazy_pages())
      return Error::make(ErrorKind::Generic, "post-copy: this agent's envrun cannot restore lazily");
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return Error::sys("socketpair");
    fetch_.reset(sv[0]), theirs.reset(sv[1]);
    fetch_image_ = image;
    fetch_out_.reset(::open(image.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fetch_out_) return Error::sys(image);
    argv.insert(argv.end(), {"--page-fetch-fd", "3"});
    return ok();
  }

  // The restore's own fetches (sections it writes before the app runs) relayed while it runs.
  Result<int> wait_relaying(ha::Child& child, const std::function<void()>& tick) {
    bool open = bool(fetch_);
    for (;;) {
      auto w = child.wait(2000, tick, open ? fetch_.get() : -1);
      if (w || !open || w.error().message != "cancelled") return w;
      open = ENVRUN_TRY(ha::relay_one(ch_, fetch_.get(), fetch_out_.get(), fetch_image_, post_));
    }
  }

  // Post-copy after Running: the page server's fetches until it has every page (it closes
  // its fd), then PagesIn. A failure here: the page server kills the tree (its fetch
  // fails) and cleanup() deletes the container.
  Result<void> pages_in() {
    post_ = ENVRUN_TRY(ha::relay_page_fetches(ch_, fetch_.get(), fetch_out_.get(), fetch_image_, post_));
    log("post-copy: every page in after " + std::to_string(post_.all_in_ms) + " ms: " + std::to_string(post_.ranges) +
        " ranges (" + std::to_string(post_.fault_ranges) + " for faults), " + std::to_string(post_.bytes) + " bytes");
    fetch_.reset(), fetch_out_.reset();
    return ok();
  }

  Result<void> await_commit() {
    auto m = ENVRUN_TRY(ch_.recv_next(4096));
    if (m.type != FrameType::Commit)
      return Error::make(ErrorKind::Generic, std::string("expected a commit, got ") + ha::frame_type_name(m.type));
    committed_ = true;
    (void)fs::remove_tree(cfg_.root.image(id_) + "/uncommitted");
    log("committed: the container runs here");
    (void)ch_.send_json(FrameType::Committed, nlohmann::json::object());
    return ok();
  }

  // Everything of an uncommitted migration goes; a committed one keeps its bundle.
  void cleanup() {
    fetch_.reset();  // a page server still fetching fails: it kills the tree
    if (!committed_ && restored_ && fs::exists(runtime::StateStore(cfg_.root.state()).dir(id_))) {
      auto c = ha::Child::spawn({envrun({"delete", "-f", id_}), {}});
      int status = c ? c->wait().value_or(1) : 1;
      if (status != 0) log("could not delete the restored container: " + (c ? c->failure_text(status) : c.error().message));
    }
    if (!committed_ && bundle_placed_) (void)fs::remove_tree(cfg_.root.bundle(id_));
    if (image_placed_) (void)fs::remove_tree(cfg_.root.image(id_));
    if (!staging_.empty()) (void)fs::remove_tree(staging_);
    if (!image_staging_.empty() && image_staging_ != staging_) (void)fs::remove_tree(image_staging_);
  }

  ha::Channel& ch_;
  const AgentConfig& cfg_;
  ha::ContentStore store_;
  std::string id_, staging_, image_staging_;
  uint64_t received_ = 0;
  bool have_bundle_ = false;
  uint32_t rounds_ = 0;       // memory rounds received
  uint64_t image_bytes_ = 0;  // all of them
  bool bundle_placed_ = false, image_placed_ = false, restored_ = false, committed_ = false;
  int64_t pid_ = 0;
  UniqueFd fetch_, fetch_out_;  // post-copy: the page server's requests, the sparse image
  std::string fetch_image_;
  ha::PostcopyStats post_;
};

}  // namespace

int delete_uncommitted(const AgentConfig& cfg) {
  int n = 0;
  for (const auto& id : fs::list_dir(cfg.root.images())) {
    if (!fs::exists(cfg.root.images() + "/" + id + "/uncommitted") ||
        !fs::exists(runtime::StateStore(cfg.root.state()).dir(id)))
      continue;
    std::vector<std::string> argv{ha::self_exe(), "--root", cfg.root.state()};
    argv.insert(argv.end(), cfg.envrun_globals.begin(), cfg.envrun_globals.end());
    argv.insert(argv.end(), {"delete", "-f", id});
    auto c = ha::Child::spawn({argv, {}});
    int status = c ? c->wait().value_or(1) : 1;
    if (cfg.log) cfg.log(id + ": " + (status == 0 ? "deleted: restored but never committed (the agent was killed)"
                                                  : "could not delete the uncommitted container: " +
                                                        (c ? c->failure_text(status) : c.error().message)));
    n += status == 0;
  }
  return n;
}

Result<std::string> serve_session(ha::Channel& ch, const AgentConfig& cfg) {
  ENVRUN_CHECK(ha::ContentStore(cfg.root.blobs()).init());
  Incoming in(ch, cfg);
  auto r = in.run();
  if (!r) {
    ch.send_error(r.error().message);
    ch.linger(2000);
    std::string who = in.id().empty() ? ch.peer() : in.id();
    return Error::make(r.error().kind, who + ": " + r.error().message + " (nothing kept)");
  }
  return r;
}

}  // namespace envrun::agent
