/* A workload with known usage, for t_billing.sh (ground truth for the billing export).
 * usage: workload DIR N_FILES BURN_MS FORKS MEM_MIB PORT K REPLY_BYTES
 *   opens exactly N_FILES files in DIR (open + close), burns BURN_MS of CPU (measured with
 *   CLOCK_PROCESS_CPUTIME_ID), forks FORKS children that exit at once, touches MEM_MIB MiB,
 *   then listens on 127.0.0.1:PORT, writes "ready" to DIR/ready, accepts K connections and
 *   keeps them all open (K concurrent clients), reads 4 bytes from each and answers with
 *   REPLY_BYTES / K bytes (one request/response exchange each), closes them, writes DIR/done
 *   with the CPU time it measured (ns), and sleeps until SIGTERM. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void write_file(const char* dir, const char* name, const char* text) {
  char path[4096], tmp[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
  FILE* f = fopen(tmp, "w");
  if (!f) exit(2);
  fputs(text, f);
  fclose(f);
  rename(tmp, path);
}

int main(int argc, char** argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: workload DIR N_FILES BURN_MS FORKS MEM_MIB PORT K REPLY_BYTES\n");
    return 2;
  }
  const char* dir = argv[1];
  int nfiles = atoi(argv[2]), forks = atoi(argv[4]), mem = atoi(argv[5]), port = atoi(argv[6]), k = atoi(argv[7]);
  long long burn = atoll(argv[3]) * 1000000LL, reply = atoll(argv[8]);
  for (int i = 0; i < nfiles; ++i) {
    char p[4096];
    snprintf(p, sizeof p, "%s/f%d", dir, i);
    int fd = open(p, O_RDONLY | O_CREAT, 0644);
    if (fd < 0) return 3;
    close(fd);
  }
  long long t0 = cpu_ns();
  volatile unsigned long x = 0;
  while (cpu_ns() - t0 < burn) x += 1;
  for (int i = 0; i < forks; ++i) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    if (p < 0) return 4;
    waitpid(p, NULL, 0);
  }
  char* m = mmap(NULL, (size_t)mem << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 5;
  for (size_t off = 0; off < (size_t)mem << 20; off += 4096) m[off] = 1;
  munmap(m, (size_t)mem << 20);

  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (bind(s, (struct sockaddr*)&a, sizeof a) || listen(s, 64)) return 6;
  write_file(dir, "ready", "ready\n");
  int* c = calloc((size_t)k, sizeof(int));
  for (int i = 0; i < k; ++i)
    if ((c[i] = accept(s, NULL, NULL)) < 0) return 7;
  char* buf = calloc(1, (size_t)(reply / k) + 1);
  memset(buf, 'r', (size_t)(reply / k));
  for (int i = 0; i < k; ++i) {
    char req[4];
    size_t got = 0;
    while (got < 4) {
      ssize_t n = read(c[i], req + got, 4 - got);
      if (n <= 0) return 8;
      got += (size_t)n;
    }
    for (long long off = 0; off < reply / k;) {
      ssize_t n = write(c[i], buf + off, (size_t)(reply / k - off));
      if (n <= 0) return 9;
      off += n;
    }
  }
  for (int i = 0; i < k; ++i) close(c[i]);
  close(s);
  char done[64];
  snprintf(done, sizeof done, "%lld\n", cpu_ns());
  write_file(dir, "done", done);
  for (;;) pause();
}
