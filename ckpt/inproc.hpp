// The in-process part of checkpoint and restore, for processes that run with the
// interception library (intercept/README.md "Checkpoint"; the handshake words are
// intercept/control.h kCkpt*). Each such process has a checkpoint thread ("envrun-ckpt")
// asleep on the instance's control page. Around the dump the engine:
//   1. asks (InprocCheckpoint::begin): barrier up, a new epoch; every checkpoint thread
//      waits until its process's other threads are at safe points (hooked calls parked),
//      flushes stdio, runs the interceptors' save hooks and answers;
//   2. dumps;
//   3. lets them go (release(), or the destructor): the resume hooks run, the barrier drops.
// Around a restore into a new instance (InprocRestore): the new page holds the barrier up
// before the tree runs; each restored checkpoint thread sees the new page, runs the restore
// hooks and answers; then the barrier drops.
// A process that does not answer within the timeout is named in a warning and the dump goes
// on without its in-process part: the image is still whole (unflushed stdio stays in the
// process's memory and is written after the restore), only earlier than the process would
// have liked. An engine that dies leaves no process held: the library lifts the barrier
// after the lease.
#pragma once
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/result.hpp"

namespace envrun::ckpt {

namespace inproc_detail {
class ControlPageMap;
}

struct InprocOptions {
  int timeout_ms = 5000;       // for the processes' answers
  uint64_t lease_ms = 60000;   // a process lifts the barrier itself after this without a word
};

// A process with libenvrun-intercept.so mapped.
struct Intercepted {
  pid_t pid = 0;        // host pid
  pid_t ckpt_tid = 0;   // its checkpoint thread (comm "envrun-ckpt..."); 0: it has none
  std::string comm;     // the process's name, for messages
};

// The processes of the tree rooted at `root` (host pid) that have the library mapped.
std::vector<Intercepted> find_intercepted(pid_t root);
// The control page a process of the tree has mapped, as a path the engine can open
// (/proc/PID/map_files/...), "" if none: for trees that are not containers (--pid).
std::string control_page_of(pid_t pid);

class InprocCheckpoint {
 public:
  // Asks every process of `procs` that has a checkpoint thread, waits for the answers.
  // Error: the page cannot be used (then nothing was asked).
  static Result<InprocCheckpoint> begin(const std::string& ctl_path, const std::vector<Intercepted>& procs,
                                        const InprocOptions& o = {});
  InprocCheckpoint(InprocCheckpoint&&) noexcept;
  InprocCheckpoint& operator=(InprocCheckpoint&& o) noexcept;
  ~InprocCheckpoint();  // release()

  size_t asked() const { return asked_; }
  size_t answered() const { return answered_; }
  uint64_t epoch() const { return epoch_; }
  // The processes go on: the epoch is released and the barrier lifted (idempotent; also
  // right when the tree was killed: nothing waits then).
  void release();

 private:
  InprocCheckpoint() = default;
  std::unique_ptr<inproc_detail::ControlPageMap> page_;
  uint64_t epoch_ = 0;
  size_t asked_ = 0, answered_ = 0;
  bool released_ = false;
};

class InprocRestore {
 public:
  // The new instance's page (before the restored tree runs): barrier up, restore answers
  // expected.
  static Result<InprocRestore> prepare(const std::string& ctl_path, const InprocOptions& o = {});
  InprocRestore(InprocRestore&&) noexcept;
  InprocRestore& operator=(InprocRestore&& o) noexcept;
  ~InprocRestore();  // lifts the barrier

  // Once the tree runs: waits for `expected` answers (expected < 0: one per process of the
  // tree rooted at `root` with the library), warns when some did not come, lifts the
  // barrier. Returns the answers.
  size_t finish(pid_t root, long expected);

 private:
  InprocRestore() = default;
  void lift();
  std::unique_ptr<inproc_detail::ControlPageMap> page_;
  InprocOptions opts_;
  bool lifted_ = false;
};

// For the CLI, around dump(): the in-process part for the tree rooted at `root` when a
// process of it has the library; ctl_path "" or missing: the page the processes map.
// Records {"inproc": {"asked": N, "answered": N, "epoch": E, "control_page": PATH,
// "db_size": N, "db_crc32c": N}} in `inventory` (control_page and the DB's size and
// checksum: when ctl_path was used; the DB is the intercept.db next to it).
Result<std::optional<InprocCheckpoint>> inproc_checkpoint(pid_t root, const std::string& ctl_path,
                                                          nlohmann::json& inventory, const InprocOptions& o = {});

// The "inproc" object of a seekable image's inventory (read, then the fd is put back at
// its offset); null for a stream or an image without one.
nlohmann::json inproc_of_image(int fd, const std::string& name);

// For the CLI, once the new instance exists (before the tree runs): nullopt when it has no
// control page or the image says no process answered at the checkpoint. Refuses (Config)
// when the new instance's intercept.db differs from the checkpointed one: the restored
// processes map it at the old address and read it as the old one (rules that use ${ID}
// or ${STATE} differ under another id).
Result<std::optional<InprocRestore>> inproc_restore(const std::string& ctl_path, const nlohmann::json& image_inproc,
                                                    const InprocOptions& o = {});

// The state directory the checkpointed processes mapped their control page and DB from,
// and the new instance's, when they differ (a restore under another id in intercept mode,
// where the processes see host paths): the prefix rewrite restore must apply to File
// mappings. nullopt when nothing is to be rewritten.
std::optional<std::pair<std::string, std::string>> inproc_state_rewrite(const nlohmann::json& image_inproc,
                                                                        const std::string& new_ctl_path);

}  // namespace envrun::ckpt
