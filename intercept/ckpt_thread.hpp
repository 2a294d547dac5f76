// The checkpoint thread of a process (intercept/README.md "Checkpoint"): started by the
// library's constructor and in fork children when the control page is the instance's file
// and the DB's chain has the barrier interceptor; ENVRUN_INTERCEPT_CKPT=off: none. It
// sleeps in a futex on the page's request word, blocks every signal, has a 64 KiB stack
// and is named "envrun-ckpt" (the engine finds it so).
// Internal to libenvrun-intercept.so.
#pragma once

namespace envrun::icpt::ckpt {

void start_thread();
// Ends the thread (after a request it is serving) and waits for it; false when there was
// none (or it did not end). For calls the kernel allows only to single-threaded processes.
bool stop_thread();

}  // namespace envrun::icpt::ckpt
