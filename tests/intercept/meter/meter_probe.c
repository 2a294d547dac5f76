/* meter_probe: a workload whose every metered quantity is known in advance, for
 * tests/integration/t_intercept_meter.sh (ground truth for the meter's counters).
 *
 *   meter_probe run KEY=VALUE...    the workload below; exit 0 when every call succeeded
 *   meter_probe nop                 does nothing (the target of the exec/spawn children)
 *   meter_probe tail TB             pipe, write TB bytes, read them back, _exit(0)
 *   meter_probe killme N            N writes of 1 byte to a pipe, then SIGKILL to itself
 *
 * run, in this order (keys: dir port lport n fb x th k t q b c p cb e s tb):
 *   1. N files DIR/f<i> created, FB bytes written to each (write, pwrite, writev in turn),
 *      closed; then opened again and read whole (read; pread; fopen+fread; readv)
 *   2. X bytes through a pipe (write, then read)
 *   3. thread A writes TH bytes to a pipe and ends (joined); thread B writes TH bytes to
 *      another pipe and blocks in read() until the process execs (step 8)
 *   4. listen on 127.0.0.1:PORT, accept K connections (accept with an address buffer and
 *      accept4 without, in turn; all held open at once), then T turns:
 *      turn i on connection i % K reads a Q-byte request (read, recv, readv in turn) and
 *      writes a response (write, send, writev, sendmsg in turn); the responses total B
 *      bytes (B / T each, the remainder on the last); then the K connections are closed
 *   5. two connections to 127.0.0.1:LPORT: C bytes with write() and DIR/f0's FB bytes with
 *      sendfile on the first (one more open), C bytes with send() on the second
 *   6. P fork children, each writes CB bytes to a pipe and ends (_exit and exit in turn);
 *      E fork children exec `meter_probe nop`; S posix_spawn of `meter_probe nop`; all
 *      waited for; the parent reads the P * CB bytes
 *   7. stdout: "done", flushed (stdio's own writes are not metered)
 *   8. exec `meter_probe tail TB` (thread B is still blocked: its batch must be flushed)
 * A failing call prints "meter_probe: <what>: <reason>" on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *self;
static long opt_n, opt_fb, opt_x, opt_th, opt_k, opt_t, opt_q, opt_b, opt_c, opt_p, opt_cb, opt_e, opt_s, opt_tb;
static long opt_port, opt_lport;
static const char *opt_dir;
static char buf[1 << 16];

static void die(const char *what) {
  fprintf(stderr, "meter_probe: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* The whole of n bytes through fn (partial transfers are continued; buf is the data). */
typedef ssize_t (*xfer_fn)(int fd, char *p, size_t n, int turn);
static void all(xfer_fn fn, int fd, size_t n, int turn, const char *what) {
  for (size_t done = 0; done < n;) {
    size_t chunk = n - done < sizeof buf ? n - done : sizeof buf;
    ssize_t r = fn(fd, buf, chunk, turn);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EPIPE;
      die(what);
    }
    done += (size_t)r;
  }
}

static ssize_t do_write(int fd, char *p, size_t n, int turn) {
  switch (turn % 4) {
    case 1: return send(fd, p, n, MSG_NOSIGNAL);
    case 2: {
      size_t h = n / 2;
      struct iovec iov[2] = {{p, h}, {p + h, n - h}};
      return writev(fd, iov, 2);
    }
    case 3: {
      struct iovec iov = {p, n};
      struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
      return sendmsg(fd, &m, MSG_NOSIGNAL);
    }
    default: return write(fd, p, n);
  }
}

static ssize_t do_read(int fd, char *p, size_t n, int turn) {
  switch (turn % 3) {
    case 1: return recv(fd, p, n, 0);
    case 2: {
      size_t h = n / 2;
      struct iovec iov[2] = {{p, h}, {p + h, n - h}};
      return readv(fd, iov, 2);
    }
    default: return read(fd, p, n);
  }
}

static ssize_t plain_write(int fd, char *p, size_t n, int turn) { (void)turn; return write(fd, p, n); }
static ssize_t plain_read(int fd, char *p, size_t n, int turn) { (void)turn; return read(fd, p, n); }

static void path_of(char *out, size_t cap, long i) { snprintf(out, cap, "%s/f%ld", opt_dir, i); }

static void files(void) {
  char path[4096];
  memset(buf, 'f', sizeof buf);
  for (long i = 0; i < opt_n; i++) {
    path_of(path, sizeof path, i);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die(path);
    ssize_t r;
    if (i % 3 == 1) {
      r = pwrite(fd, buf, (size_t)opt_fb, 0);
    } else if (i % 3 == 2) {
      struct iovec iov[2] = {{buf, (size_t)opt_fb / 2}, {buf, (size_t)opt_fb - (size_t)opt_fb / 2}};
      r = writev(fd, iov, 2);
    } else {
      r = write(fd, buf, (size_t)opt_fb);
    }
    if (r != opt_fb || close(fd) != 0) die("write a file");
  }
  for (long i = 0; i < opt_n; i++) {
    path_of(path, sizeof path, i);
    ssize_t r;
    if (i % 4 == 2) {
      FILE *f = fopen(path, "re");
      if (!f) die(path);
      r = (ssize_t)fread(buf, 1, (size_t)opt_fb + 1, f);
      if (fclose(f) != 0) die("fclose");
    } else {
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) die(path);
      if (i % 4 == 1) {
        r = pread(fd, buf, (size_t)opt_fb + 1, 0);
      } else if (i % 4 == 3) {
        struct iovec iov[2] = {{buf, 1}, {buf + 1, (size_t)opt_fb}};
        r = readv(fd, iov, 2);
      } else {
        r = read(fd, buf, (size_t)opt_fb + 1);
      }
      if (close(fd) != 0) die("close");
    }
    if (r != opt_fb) die("read a file back whole");
  }
}

static void through_pipe(long n) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) die("pipe");
  all(plain_write, p[1], (size_t)n, 0, "write to a pipe");
  all(plain_read, p[0], (size_t)n, 0, "read from a pipe");
  close(p[0]);
  close(p[1]);
}

static int thread_pipe[2][2], block_pipe[2];
static void *thread_main(void *arg) {
  long which = (long)arg;
  char local[4096];
  memset(local, 't', sizeof local);
  for (long done = 0; done < opt_th;) {
    ssize_t r = write(thread_pipe[which][1], local, (size_t)(opt_th - done) < sizeof local ? (size_t)(opt_th - done) : sizeof local);
    if (r <= 0) die("thread write");
    done += r;
  }
  if (which == 1) {
    char c;
    (void)read(block_pipe[0], &c, 1);  /* never returns: the process execs first */
  }
  return NULL;
}

static void threads(void) {
  pthread_t a, b;
  if (pipe2(thread_pipe[0], O_CLOEXEC) || pipe2(thread_pipe[1], O_CLOEXEC) || pipe2(block_pipe, O_CLOEXEC)) die("pipe");
  if (pthread_create(&a, NULL, thread_main, (void *)0L) || pthread_create(&b, NULL, thread_main, (void *)1L))
    die("pthread_create");
  all(plain_read, thread_pipe[0][0], (size_t)opt_th, 0, "read thread A's bytes");
  if (pthread_join(a, NULL)) die("pthread_join");
  all(plain_read, thread_pipe[1][0], (size_t)opt_th, 0, "read thread B's bytes");
}

static struct sockaddr_in loopback(long port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

static void serve(void) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  struct sockaddr_in sa = loopback(opt_port);
  if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) || bind(l, (struct sockaddr *)&sa, sizeof sa) ||
      listen(l, (int)opt_k))
    die("listen");
  int *conns = calloc((size_t)opt_k, sizeof *conns);
  for (long i = 0; i < opt_k; i++) {
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    conns[i] = i % 2 ? accept4(l, NULL, NULL, SOCK_CLOEXEC) : accept(l, (struct sockaddr *)&peer, &len);
    if (conns[i] < 0) die("accept");
  }
  memset(buf, 'r', sizeof buf);
  for (long t = 0; t < opt_t; t++) {
    int fd = conns[t % opt_k];
    all(do_read, fd, (size_t)opt_q, (int)t, "read a request");
    long resp = opt_b / opt_t + (t == opt_t - 1 ? opt_b % opt_t : 0);
    all(do_write, fd, (size_t)resp, (int)t, "write a response");
  }
  for (long i = 0; i < opt_k; i++) close(conns[i]);
  close(l);
  free(conns);
}

static void connect_out(void) {
  struct sockaddr_in sa = loopback(opt_lport);
  int s[2];
  for (int i = 0; i < 2; i++) {
    s[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s[i] < 0 || connect(s[i], (struct sockaddr *)&sa, sizeof sa) != 0) die("connect to the listener");
  }
  memset(buf, 'c', sizeof buf);
  all(plain_write, s[0], (size_t)opt_c, 0, "write to the listener");
  char path[4096];
  path_of(path, sizeof path, 0);
  int f = open(path, O_RDONLY | O_CLOEXEC);
  if (f < 0) die(path);
  off_t off = 0;
  for (long done = 0; done < opt_fb;) {
    ssize_t r = sendfile(s[0], f, &off, (size_t)(opt_fb - done));
    if (r <= 0) die("sendfile");
    done += r;
  }
  close(f);
  all(do_write, s[1], (size_t)opt_c, 1, "send to the listener");  /* turn 1: send() */
  close(s[0]);
  close(s[1]);
}

static void children(void) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) die("pipe");
  memset(buf, 'k', sizeof buf);
  for (long i = 0; i < opt_p; i++) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      all(plain_write, p[1], (size_t)opt_cb, 0, "child write");
      if (i % 2) exit(0);
      _exit(0);
    }
  }
  for (long i = 0; i < opt_e; i++) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      execl(self, self, "nop", (char *)NULL);
      _exit(127);
    }
  }
  for (long i = 0; i < opt_s; i++) {
    pid_t pid;
    char *argv[] = {(char *)self, "nop", NULL};
    if ((errno = posix_spawn(&pid, self, NULL, NULL, argv, environ)) != 0) die("posix_spawn");
  }
  for (long i = 0; i < opt_p + opt_e + opt_s; i++) {
    int st;
    if (wait(&st) < 0) die("wait");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      errno = ECHILD;
      die("a child failed");
    }
  }
  close(p[1]);
  all(plain_read, p[0], (size_t)(opt_p * opt_cb), 0, "read the children's bytes");
  close(p[0]);
}

static long *key(const char *k) {
  static const struct { const char *name; long *v; } keys[] = {
      {"n", &opt_n}, {"fb", &opt_fb}, {"x", &opt_x}, {"th", &opt_th}, {"k", &opt_k}, {"t", &opt_t},
      {"q", &opt_q}, {"b", &opt_b}, {"c", &opt_c}, {"p", &opt_p}, {"cb", &opt_cb}, {"e", &opt_e},
      {"s", &opt_s}, {"tb", &opt_tb}, {"port", &opt_port}, {"lport", &opt_lport}};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strcmp(keys[i].name, k) == 0) return keys[i].v;
  return NULL;
}

static int run(int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (!eq) goto usage;
    *eq = '\0';
    if (strcmp(argv[i], "dir") == 0) {
      opt_dir = eq + 1;
      continue;
    }
    long *v = key(argv[i]);
    if (!v) goto usage;
    *v = strtol(eq + 1, NULL, 10);
  }
  if (!opt_dir || opt_n < 1 || opt_fb < 1 || opt_k < 1 || opt_t < 1 || opt_q < 1 || opt_b < opt_t || !opt_port || !opt_lport)
    goto usage;
  files();
  through_pipe(opt_x);
  threads();
  serve();
  connect_out();
  children();
  printf("done\n");
  fflush(stdout);
  char tb[32];
  snprintf(tb, sizeof tb, "%ld", opt_tb);
  execl(self, self, "tail", tb, (char *)NULL);
  die("exec tail");
usage:
  fprintf(stderr, "meter_probe run: want dir= port= lport= and n fb x th k t q b c p cb e s tb (n, fb, k, t, q >= 1, b >= t)\n");
  return 2;
}

int main(int argc, char **argv) {
  self = argv[0];
  if (argc >= 2 && strcmp(argv[1], "nop") == 0) return 0;
  if (argc == 3 && strcmp(argv[1], "tail") == 0) {
    through_pipe(strtol(argv[2], NULL, 10));
    _exit(0);
  }
  if (argc == 3 && strcmp(argv[1], "killme") == 0) {
    int p[2];
    if (pipe(p) != 0) die("pipe");
    for (long i = strtol(argv[2], NULL, 10); i > 0; i--)
      if (write(p[1], "k", 1) != 1) die("write");
    raise(SIGKILL);
  }
  if (argc >= 2 && strcmp(argv[1], "run") == 0) return run(argc - 2, argv + 2);
  fprintf(stderr, "usage: meter_probe run KEY=VALUE... | nop | tail TB | killme N\n");
  return 2;
}
