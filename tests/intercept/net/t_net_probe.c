/* t_net_probe: calls the interception library's exec/spawn, dlopen, socket and syscall()
 * hooks the way applications do, and prints what it sees, for t_intercept_net_exec.sh.
 *
 *   t_net_probe syscall-cat PATH          syscall(SYS_openat) + read: prints the file
 *   t_net_probe io-uring                  syscall(SYS_io_uring_setup): "ok" or the errno name
 *   t_net_probe dlopen LIB SYMBOL         dlopen + dlsym, prints SYMBOL() (const char *)
 *   t_net_probe execvp FILE ARG...        execvp (PATH search through the rules)
 *   t_net_probe execlp FILE ARG           execlp
 *   t_net_probe spawnp FILE ARG...        posix_spawnp, waits, prints "exit N"
 *   t_net_probe noenv-exec PATH ARG...    execve with an empty environment
 *   t_net_probe udp PORT                  UDP echo through PORT: prints the ports each side sees
 *                                         and the one the kernel has (/proc/net/udp)
 *   t_net_probe unix PATH                 AF_UNIX stream bind/listen/connect/accept at PATH,
 *                                         prints getsockname and a round trip (PATH is left)
 * Exit status 0 when the calls succeeded, 1 otherwise (with a message on stderr).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int die(const char *what) {
  fprintf(stderr, "t_net_probe: %s: %s\n", what, strerror(errno));
  return 1;
}

static int syscall_cat(const char *path) {
  long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return die(path);
  char buf[4096];
  long n;
  while ((n = syscall(SYS_read, fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
  syscall(SYS_close, fd);
  return 0;
}

static int io_uring(void) {
  unsigned char params[120] = {0}; /* struct io_uring_params */
  long fd = syscall(SYS_io_uring_setup, 1, params);
  if (fd >= 0) {
    printf("ok\n");
    close((int)fd);
  } else {
    printf("%s\n", errno == ENOSYS ? "ENOSYS" : strerror(errno));
  }
  return 0;
}

static int dl(const char *lib, const char *sym) {
  void *h = dlopen(lib, RTLD_NOW);
  if (!h) {
    fprintf(stderr, "t_net_probe: dlopen: %s\n", dlerror());
    return 1;
  }
  const char *(*fn)(void) = (const char *(*)(void))dlsym(h, sym);
  if (!fn) {
    fprintf(stderr, "t_net_probe: dlsym: %s\n", dlerror());
    return 1;
  }
  printf("%s\n", fn());
  return 0;
}

static int spawnp(char **argv) {
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
  if (rc != 0) {
    errno = rc;
    return die("posix_spawnp");
  }
  int st;
  if (waitpid(pid, &st, 0) < 0) return die("waitpid");
  printf("exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  return 0;
}

static int port_of(const struct sockaddr_in *a) { return ntohs(a->sin_port); }

/* The local port the kernel has for socket fd, from /proc/net/udp (no socket call that the
 * library could map): the line whose inode is the socket's. -1 when not found. */
static int kernel_udp_port(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -1;
  FILE *f = fopen("/proc/net/udp", "r");
  if (!f) return -1;
  char line[512];
  int port = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned lport;
    unsigned long inode;
    /* sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode */
    if (sscanf(line, " %*d: %*x:%x %*x:%*x %*x %*x:%*x %*x:%*x %*x %*u %*u %lu", &lport, &inode) == 2 &&
        inode == (unsigned long)st.st_ino) {
      port = (int)lport;
      break;
    }
  }
  fclose(f);
  return port;
}

/* Server bound to 127.0.0.1:PORT, client sends to it and reads the echo. */
static int udp(int port) {
  int srv = socket(AF_INET, SOCK_DGRAM, 0), cli = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(srv, (struct sockaddr *)&a, sizeof a) != 0) return die("bind");
  struct sockaddr_in got;
  socklen_t len = sizeof got;
  getsockname(srv, (struct sockaddr *)&got, &len);
  printf("server getsockname %d\n", port_of(&got));
  printf("kernel port %d\n", kernel_udp_port(srv));
  if (sendto(cli, "ping", 4, 0, (struct sockaddr *)&a, sizeof a) != 4) return die("sendto");
  char buf[16];
  struct sockaddr_in from;
  len = sizeof from;
  if (recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &len) != 4) return die("recvfrom (server)");
  if (sendto(srv, "pong", 4, 0, (struct sockaddr *)&from, len) != 4) return die("sendto (reply)");
  struct msghdr m = {0};
  struct iovec iov = {buf, sizeof buf};
  m.msg_name = &from;
  m.msg_namelen = sizeof from;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (recvmsg(cli, &m, 0) != 4) return die("recvmsg (client)");
  printf("client got %.4s from port %d\n", buf, port_of(&from));
  return 0;
}

static int unix_stream(const char *path) {
  int srv = socket(AF_UNIX, SOCK_STREAM, 0), cli = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) {
    errno = ENAMETOOLONG;
    return die(path);
  }
  strcpy(a.sun_path, path);
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
  if (bind(srv, (struct sockaddr *)&a, alen) != 0) return die("bind");
  if (listen(srv, 1) != 0) return die("listen");
  struct sockaddr_un got;
  socklen_t len = sizeof got;
  if (getsockname(srv, (struct sockaddr *)&got, &len) != 0) return die("getsockname");
  printf("getsockname %s\n", got.sun_path);
  if (connect(cli, (struct sockaddr *)&a, alen) != 0) return die("connect");
  int c = accept(srv, NULL, NULL);
  if (c < 0) return die("accept");
  char buf[8] = {0};
  if (send(cli, "ping", 4, 0) != 4 || recv(c, buf, 4, 0) != 4) return die("send/recv");
  printf("round trip %s\n", buf);
  close(c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: t_net_probe MODE ARGS...\n");
    return 2;
  }
  const char *mode = argv[1];
  if (!strcmp(mode, "syscall-cat") && argc == 3) return syscall_cat(argv[2]);
  if (!strcmp(mode, "io-uring")) return io_uring();
  if (!strcmp(mode, "dlopen") && argc == 4) return dl(argv[2], argv[3]);
  if (!strcmp(mode, "execvp") && argc >= 3) {
    execvp(argv[2], argv + 2);
    return die("execvp");
  }
  if (!strcmp(mode, "execlp") && argc == 4) {
    execlp(argv[2], argv[2], argv[3], (char *)NULL);
    return die("execlp");
  }
  if (!strcmp(mode, "spawnp") && argc >= 3) return spawnp(argv + 2);
  if (!strcmp(mode, "noenv-exec") && argc >= 3) {
    char *empty[] = {NULL};
    execve(argv[2], argv + 2, empty);
    return die("execve");
  }
  if (!strcmp(mode, "udp") && argc == 3) return udp(atoi(argv[2]));
  if (!strcmp(mode, "unix") && argc == 3) return unix_stream(argv[2]);
  fprintf(stderr, "t_net_probe: bad arguments for %s\n", mode);
  return 2;
}
