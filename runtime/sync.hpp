// The parent <-> container-init channel: a SOCK_SEQPACKET socketpair carrying
// one-byte typed messages with an optional text payload and an optional fd.
#pragma once
#include <string>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::runtime {

enum class SyncMsg : char {
  Go = 'g',         // parent -> child: ids mapped, cgroups joined; continue
  Hooks = 'h',      // child -> parent: run prestart/createRuntime hooks now
  HooksDone = 'H',  // parent -> child
  Ready = 'r',      // child -> parent: set up, waiting for start
  Error = 'e',      // child -> parent: payload = kind byte + message
};

class SyncChannel {
 public:
  SyncChannel() = default;
  explicit SyncChannel(UniqueFd fd) : fd_(std::move(fd)) {}
  static Result<std::pair<SyncChannel, SyncChannel>> make_pair();
  Result<void> send(SyncMsg type, const std::string& payload = {}, int fd = -1) const;
  // EOF is reported as an Error with sys_errno == EPIPE.
  Result<SyncMsg> recv(std::string* payload = nullptr, UniqueFd* fd = nullptr) const;
  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  UniqueFd fd_;
};

// Send an fd over a connected unix socket (console socket protocol, like runc's).
Result<void> send_fd(int sock, int fd, const std::string& name);

}  // namespace envrun::runtime
