#include "runtime/sync.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstring>

namespace envrun::runtime {

Result<std::pair<SyncChannel, SyncChannel>> SyncChannel::make_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return Error::sys("socketpair");
  return std::make_pair(SyncChannel(UniqueFd(sv[0])), SyncChannel(UniqueFd(sv[1])));
}

static Result<void> send_with_fd(int sock, const std::string& data, int fd) {
  struct iovec iov = {const_cast<char*>(data.data()), data.size()};
  struct msghdr msg;
  std::memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    std::memset(cbuf, 0, sizeof cbuf);
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  for (;;) {
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return ok();
    if (errno != EINTR) return Error::sys("sendmsg");
  }
}

Result<void> SyncChannel::send(SyncMsg type, const std::string& payload, int fd) const {
  std::string data(1, char(type));
  data += payload;
  return send_with_fd(fd_.get(), data, fd);
}

Result<SyncMsg> SyncChannel::recv(std::string* payload, UniqueFd* fd) const {
  char buf[8192];
  struct iovec iov = {buf, sizeof buf};
  struct msghdr msg;
  std::memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n;
  do n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return Error::sys("recvmsg");
  if (n == 0) return Error{EPIPE, ErrorKind::Generic, "channel closed"};
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int got;
      std::memcpy(&got, CMSG_DATA(c), sizeof(int));
      if (fd) fd->reset(got);
      else ::close(got);
    }
  }
  if (payload) payload->assign(buf + 1, size_t(n - 1));
  return SyncMsg(buf[0]);
}

Result<void> send_fd(int sock, int fd, const std::string& name) { return send_with_fd(sock, name, fd); }

}  // namespace envrun::runtime
