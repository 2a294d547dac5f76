// The page server's watchdog (lazy_watchdog.hpp).
#include "ckpt/lazy_watchdog.hpp"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "kernel/fd.hpp"
#include "kernel/log.hpp"

namespace envrun::ckpt {

namespace {

int g_sock = -1;
pid_t g_pid = 0;

// The watchdog's body: collect fds until told "D" (exit) or the socket closes (kill).
[[noreturn]] void watch(int sock, pid_t root) {
  std::vector<int> held;
  for (;;) {
    char byte = 0;
    char ctl[CMSG_SPACE(sizeof(int))];
    iovec iov{&byte, 1};
    msghdr m{};
    m.msg_iov = &iov, m.msg_iovlen = 1, m.msg_control = ctl, m.msg_controllen = sizeof ctl;
    ssize_t n = ::recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n == 1 && byte == 'D') ::_exit(0);
    if (n <= 0) {  // the server is gone without being done
      log::error("lazy pages: the page server died before every page was in: killing the restored tree (root pid " +
                 std::to_string(root) + ")");
      kill_lazy_tree(root);
      ::_exit(1);
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        held.push_back(fd);
      }
  }
}

}  // namespace

Result<void> lazy_watchdog_start(const std::vector<int>& uffds, pid_t root) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return Error::sys("lazy pages: watchdog socketpair");
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(sv[0]), ::close(sv[1]);
    return Error::sys("lazy pages: fork the watchdog");
  }
  if (pid == 0) {
    ::close(sv[0]);
    ::prctl(PR_SET_NAME, "envrun-lazy-wd");
    // Only the userfaultfds and the socket stay.
    std::vector<int> keep = uffds;
    keep.push_back(sv[1]);
    if (log::file_fd() >= 0) keep.push_back(log::file_fd());
    if (DIR* d = ::opendir("/proc/self/fd")) {
      std::vector<int> all;
      while (dirent* e = ::readdir(d)) all.push_back(std::atoi(e->d_name));
      int self = ::dirfd(d);
      for (int fd : all)
        if (fd > 2 && fd != self && std::find(keep.begin(), keep.end(), fd) == keep.end()) ::close(fd);
      ::closedir(d);
    }
    watch(sv[1], root);
  }
  ::close(sv[1]);
  g_sock = sv[0];
  g_pid = pid;
  return ok();
}

void lazy_watchdog_hold(int uffd) {
  if (g_sock < 0) return;
  char byte = 'F';
  char ctl[CMSG_SPACE(sizeof(int))]{};
  iovec iov{&byte, 1};
  msghdr m{};
  m.msg_iov = &iov, m.msg_iovlen = 1, m.msg_control = ctl, m.msg_controllen = sizeof ctl;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &uffd, sizeof uffd);
  (void)::sendmsg(g_sock, &m, MSG_NOSIGNAL);
}

void lazy_watchdog_done() {
  if (g_sock < 0) return;
  char byte = 'D';
  (void)::send(g_sock, &byte, 1, MSG_NOSIGNAL);
  ::close(g_sock);
  g_sock = -1;
  if (g_pid > 0) ::waitpid(g_pid, nullptr, 0);
  g_pid = 0;
}

}  // namespace envrun::ckpt
