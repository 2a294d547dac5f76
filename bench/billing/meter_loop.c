/* meter_loop: the syscall-heavy inner loops of bench/billing/meter, timed inside the process
 * (process start-up and the preload library's constructor stay out of the figure).
 *
 *   meter_loop pipe N          N x (write 1 byte to a pipe, read it back): 2 calls
 *   meter_loop pread FILE N    N x pread of 1 byte at offset 0 of FILE (page-cached)
 *       prints "<op> <N> <ns per iteration>"
 *   meter_loop pair OP [FILE] N BIT
 *       the same loop in blocks of 1000 iterations, the meter switched on and off between
 *       blocks through the control page named by ENVRUN_INTERCEPT_CTL (bit BIT of its
 *       `enabled` mask, intercept/control.h), in the order on, off, off, on, ...; prints
 *       "pair <OP> <N> <ns on> <ns off> <median added ns per iteration>" and, on a second
 *       line, "metered <iterations run with the meter on, warm-up included>" (the caller
 *       checks the counters against it).
 *
 * Every call is checked: a failure prints "meter_loop: <what>: <reason>" and exits 1.
 * A warm-up of N/10 iterations (at most 20000, meter on) runs first, untimed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int fds[2];
static int file_fd = -1;

static int fail(const char *what) {
  fprintf(stderr, "meter_loop: %s: %s\n", what, strerror(errno));
  return 1;
}

static int run_pipe(long n) {
  char c = 'x';
  for (long i = 0; i < n; i++) {
    if (write(fds[1], &c, 1) != 1) return fail("write to the pipe");
    if (read(fds[0], &c, 1) != 1) return fail("read from the pipe");
  }
  return 0;
}

static int run_pread(long n) {
  char c;
  for (long i = 0; i < n; i++)
    if (pread(file_fd, &c, 1, 0) != 1) return fail("pread");
  return 0;
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The control page's `enabled` word (offset 16), mapped from ENVRUN_INTERCEPT_CTL. */
static _Atomic uint64_t *enabled_word(void) {
  const char *path = getenv("ENVRUN_INTERCEPT_CTL");
  if (!path || !*path) {
    fprintf(stderr, "meter_loop: pair needs ENVRUN_INTERCEPT_CTL (the control page)\n");
    return NULL;
  }
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail(path), NULL;
  void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return fail("mmap of the control page"), NULL;
  if (memcmp(p, "ENVRCTL", 8) != 0) {
    fprintf(stderr, "meter_loop: %s: not a control page\n", path);
    return NULL;
  }
  return (_Atomic uint64_t *)((char *)p + 16);
}

static int run_pair(int (*loop)(long), const char *op, long n, long warm, int bit) {
  _Atomic uint64_t *en = enabled_word();
  if (!en) return 1;
  uint64_t on = atomic_load(en) | (1ull << bit), off = on & ~(1ull << bit);
  atomic_store(en, on);
  if (loop(warm)) return 1;
  long pairs = (n + 999) / 1000, metered = warm;
  double *diff = malloc((size_t)pairs * sizeof *diff);
  if (!diff) return fail("malloc");
  long long total[2] = {0, 0};
  long k = 0;
  for (long done = 0; done < n; k++) {
    long block = n - done < 1000 ? n - done : 1000;
    long long t[2];
    int first = (int)(k & 1); /* 0: meter on first */
    for (int j = 0; j < 2; j++) {
      int which = j == 0 ? first : !first; /* 0: on, 1: off */
      atomic_store(en, which == 0 ? on : off);
      long long t0 = now_ns();
      if (loop(block)) return 1;
      t[which] = now_ns() - t0;
      if (which == 0) metered += block;
    }
    total[0] += t[0];
    total[1] += t[1];
    diff[k] = (double)(t[0] - t[1]) / (double)block;
    done += block;
  }
  atomic_store(en, on);
  qsort(diff, (size_t)k, sizeof *diff, cmp_double);
  double med = k % 2 ? diff[k / 2] : (diff[k / 2 - 1] + diff[k / 2]) / 2;
  printf("pair %s %ld %.2f %.2f %.2f\n", op, n, (double)total[0] / n, (double)total[1] / n, med);
  printf("metered %ld\n", metered);
  free(diff);
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: meter_loop pipe N | pread FILE N | pair pipe N BIT | pair pread FILE N BIT\n");
  return 2;
}

static long parse_n(const char *s) {
  char *end;
  long n = strtol(s, &end, 10);
  return *end || n <= 0 ? -1 : n;
}

int main(int argc, char **argv) {
  int pair = argc > 1 && strcmp(argv[1], "pair") == 0;
  char **a = argv + 1 + pair;
  int left = argc - 1 - pair;
  if (left < 1) return usage();
  int (*loop)(long) = NULL;
  const char *op = a[0];
  if (strcmp(op, "pipe") == 0) {
    loop = run_pipe;
    a += 1, left -= 1;
    if (pipe(fds) != 0) return fail("pipe");
  } else if (strcmp(op, "pread") == 0 && left >= 2) {
    loop = run_pread;
    file_fd = open(a[1], O_RDONLY | O_CLOEXEC);
    if (file_fd < 0) return fail(a[1]);
    a += 2, left -= 2;
  } else {
    return usage();
  }
  if (left != 1 + pair) return usage();
  long n = parse_n(a[0]);
  int bit = pair ? atoi(a[1]) : 0;
  if (n < 0 || bit < 0 || bit > 63) return usage();
  long warm = n / 10 < 20000 ? n / 10 : 20000;
  if (warm < 1) warm = 1;
  if (pair) return run_pair(loop, op, n, warm, bit);
  if (loop(warm)) return 1;
  long long t0 = now_ns();
  if (loop(n)) return 1;
  long long t1 = now_ns();
  printf("%s %ld %.2f\n", op, n, (double)(t1 - t0) / (double)n);
  return 0;
}
