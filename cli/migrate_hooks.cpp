// MigrateHooks (migrate_hooks.hpp).
#include "cli/migrate_hooks.hpp"

#include <stdlib.h>

#include "ha/subprocess.hpp"
#include "kernel/log.hpp"

namespace envrun::cli {

void MigrateHooks::set_context(const std::string& id, const std::string& target) {
  ::setenv("ENVRUN_MIGRATE_ID", id.c_str(), 1);
  ::setenv("ENVRUN_MIGRATE_TARGET", target.c_str(), 1);
}

Result<void> MigrateHooks::run(const char* name, const std::string& cmd) {
  if (cmd.empty()) return ok();
  ::setenv("ENVRUN_MIGRATE_HOOK", name, 1);
  log::debug(std::string("migrate: --") + name + " hook: " + cmd);
  auto c = ha::Child::spawn({{"/bin/sh", "-c", cmd}, {}});
  if (!c) return Error::make(ErrorKind::Generic, std::string("--") + name + " hook: " + c.error().message);
  auto status = c->wait();
  if (!status) return Error::make(ErrorKind::Generic, std::string("--") + name + " hook: " + status.error().message);
  if (*status != 0) {
    std::string why = "exit status " + std::to_string(*status);
    if (!c->err_text().empty()) why += ": " + c->failure_text(*status);
    return Error::make(ErrorKind::Generic, std::string("--") + name + " hook failed: " + why);
  }
  return ok();
}

Result<void> MigrateHooks::run_before_stop() {
  undo_due_ = undo_due_ || !before_stop.empty();
  return run("before-stop", before_stop);
}

Result<void> MigrateHooks::run_before_restore() {
  undo_due_ = undo_due_ || !before_restore.empty();
  return run("before-restore", before_restore);
}

Result<void> MigrateHooks::run_on_rollback() {
  if (!undo_due_) return ok();
  undo_due_ = false;
  return run("on-rollback", on_rollback);
}

}  // namespace envrun::cli
