// The hooks of `envrun migrate`: shell commands run on the source host at three points of
// a migration, so that what the app needs from its host can move with it (typically its
// service address, for established TCP connections: taken down here right before the
// final freeze, so that the peers' packets are dropped instead of answered with a reset
// while the connections are dumped and gone; brought up on the target before it
// restores; put back here when the migration is rolled back).
//   --before-stop CMD     right before the final checkpoint freezes the app;
//   --before-restore CMD  after the final image and bundle are on the target, before it
//                         is asked to restore (a failure rolls the migration back);
//   --on-rollback CMD     when the migration fails after one of the two above ran: once
//                         the app is restored here (its sockets bind their addresses even
//                         while absent, so none is back before its socket), or, if it
//                         never stopped, before migrate exits (it undoes them; its failure
//                         is reported, the rollback stands).
// Each runs as /bin/sh -c CMD with ENVRUN_MIGRATE_ID, ENVRUN_MIGRATE_TARGET (addr:port)
// and ENVRUN_MIGRATE_HOOK (before-stop, before-restore, on-rollback) set, stdin and
// stdout on /dev/null; its stderr ends up in the error message when it fails.
#pragma once
#include <string>

#include "kernel/result.hpp"

namespace envrun::cli {

class MigrateHooks {
 public:
  std::string before_stop, before_restore, on_rollback;

  MigrateHooks() = default;
  void set_context(const std::string& id, const std::string& target);
  Result<void> run_before_stop();
  Result<void> run_before_restore();
  // Runs --on-rollback if a hook ran since the last rollback; ok() if it had nothing to undo.
  Result<void> run_on_rollback();
  bool undo_due() const { return undo_due_; }

 private:
  Result<void> run(const char* name, const std::string& cmd);
  bool undo_due_ = false;
};

}  // namespace envrun::cli
