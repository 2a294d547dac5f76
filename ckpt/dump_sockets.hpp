// The fds /proc does not describe enough: sockets (read through a duplicate taken with
// pidfd_getfd, plus sock_diag in the target's network namespace for unix peers),
// epoll instances (their registrations from fdinfo, checked with kcmp), eventfds,
// timerfds and signalfds (from fdinfo).
#pragma once
#include <sys/types.h>

#include <vector>

#include "ckpt/model.hpp"
#include "ckpt/proc_read.hpp"
#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::ckpt {

struct SocketDump {
  std::vector<uint8_t> queued;      // bytes queued for this end (unix stream, TCP), not consumed
  std::vector<uint8_t> send_queue;  // TCP: the send queue
  UniqueFd repair;                  // TCP: our duplicate, left in repair mode (tcp_repair.hpp)
};
// f.kind = Socket and f.sock filled. Established TCP connections are read in repair mode
// when `tcp_established` (else refused, like every socket that cannot be re-made, with a
// message that says what it is).
Result<void> dump_socket(pid_t pid, const proc::FdInfo& fd, OpenFile& f, SocketDump& out, bool tcp_established);
// f.kind = Epoll: registrations as fd numbers of `ns_pid` (each checked to be the
// file that fd holds now, with kcmp(KCMP_EPOLL_TFD)).
Result<void> dump_epoll(pid_t pid, pid_t ns_pid, const proc::FdInfo& fd, OpenFile& f);
// f.kind = EventFd: counter and semaphore mode from fdinfo.
Result<void> dump_eventfd(const proc::FdInfo& fd, OpenFile& f);
// f.kind = TimerFd / SignalFd, from fdinfo.
Result<void> dump_timerfd(const proc::FdInfo& fd, OpenFile& f);
Result<void> dump_signalfd(const proc::FdInfo& fd, OpenFile& f);

}  // namespace envrun::ckpt
