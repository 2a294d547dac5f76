// The state of one stopped process that /proc does not show, taken from inside it
// with remote syscalls (signal actions, brk, alternate stacks, clear_child_tid) and
// from ptrace (registers, masks, pending signals, rseq), plus what /proc shows.
#pragma once
#include <sys/types.h>

#include <vector>

#include "ckpt/dump_files.hpp"
#include "ckpt/infect/infect.hpp"
#include "ckpt/model.hpp"

namespace envrun::ckpt {

struct CapturedProcess {
  ProcessCore core;
  std::vector<infect::ThreadRegs> regs;  // parallel to core.threads
};

// host_tids: the process's threads, every one seized and stopped.
Result<CapturedProcess> capture_process(pid_t host_pid, const std::vector<pid_t>& host_tids, FileTable& files);

}  // namespace envrun::ckpt
