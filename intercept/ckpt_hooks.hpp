// What each part of the library does around a checkpoint (the events DMTCP's plugins get:
// pre-checkpoint, resume, restart). The checkpoint thread (ckpt_thread.cpp) runs them:
//   save     before the dump, with the barrier up and the other threads at safe points
//            (parked, out of every hook, or asleep in the kernel);
//   resume   the process goes on after the dump (--leave-running, or the dump failed);
//   restore  the process was restored into a new instance (a new control page), before
//            the engine lifts the barrier.
// save runs in table order, resume and restore in reverse. A hook uses raw system calls or
// libc functions that are not hooked (a hooked call from this thread is not held by the
// barrier, but it is counted and redirected like any other). Internal.
#pragma once
#include <cstddef>

namespace envrun::icpt::ckpt {

struct CkptHook {
  const char* name;
  void (*save)();
  void (*resume)();
  void (*restore)();
};

// The table (ckpt_hooks.cpp) and its length.
const CkptHook* hooks(size_t* n);

void run_save_hooks();
void run_resume_hooks();
void run_restore_hooks();

// stdio: flush every stream with pending output, skipping those another thread holds
// locked (ftrylockfile: a thread blocked inside fwrite would block fflush(NULL) forever).
// Returns the number of streams skipped.
int flush_stdio();

}  // namespace envrun::icpt::ckpt
