/* intercept_loop: the inner loops of bench/intercept, timed inside the process so that
 * process start-up (and the preload library's constructor) is not part of the figure.
 *
 *   intercept_loop open PATH N   N x (open(PATH, O_RDONLY) + close)
 *   intercept_loop stat PATH N   N x stat(PATH)
 *   intercept_loop statpair PATH N
 *                                N x stat(PATH) as linked (hooked when a library is
 *                                preloaded) and N x libc's own stat, in alternating blocks;
 *                                prints "statpair N <ns hooked> <ns direct> <median added ns>"
 *                                (see run_statpair)
 *
 * Prints one line "<op> <N> <ns per iteration>" to stdout. Every call is checked: a failure
 * prints "intercept_loop: <op> PATH: <reason>" and exits 1, so a tool that does not
 * redirect the path (the file exists only through the tool's mapping) shows up as an error
 * instead of a fast figure. A warm-up of N/10 iterations (at most 20000) runs first,
 * untimed: lazy symbol binding and the tools' first-call set-up stay out of the figure.
 * The calls go through libc's exported open/close/stat, the symbols a preload library hooks.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *op, const char *path) {
  fprintf(stderr, "intercept_loop: %s %s: %s\n", op, path, strerror(errno));
  return 1;
}

static int run_open(const char *path, long n) {
  for (long i = 0; i < n; i++) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail("open", path);
    if (close(fd) != 0) return fail("close", path);
  }
  return 0;
}

static int run_stat(const char *path, long n) {
  struct stat st;
  for (long i = 0; i < n; i++)
    if (stat(path, &st) != 0) return fail("stat", path);
  return 0;
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef int (*stat_fn)(const char *, struct stat *);

static long long stat_block(stat_fn fn, const char *path, long block, int *err) {
  struct stat st;
  long long t0 = now_ns();
  for (long i = 0; i < block; i++)
    if (fn(path, &st) != 0) {
      *err = fail("stat", path);
      return 0;
    }
  return now_ns() - t0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Blocks of 1000 calls of `stat` as the program links it (the preloaded hook, if any) and of
 * libc's own stat (looked up in libc's handle, which no preload library can interpose), in
 * the order hooked, direct, direct, hooked, ... Reports the mean ns of each and the median
 * over block pairs of (hooked - direct) per call: what the hook adds, with load spikes that
 * hit single blocks left out. */
static int run_statpair(const char *path, long n, double out[3]) {
  void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  stat_fn direct = libc ? (stat_fn)dlsym(libc, "stat") : NULL;
  if (!direct) {
    fprintf(stderr, "intercept_loop: libc's own stat not found: %s\n", dlerror());
    return 1;
  }
  long pairs = (n + 999) / 1000;
  double *diff = malloc((size_t)pairs * sizeof *diff);
  if (!diff) return fail("malloc", path);
  long long total[2] = {0, 0};
  int err = 0;
  long k = 0;
  for (long done = 0; done < n && !err; k++) {
    long block = n - done < 1000 ? n - done : 1000;
    long long t[2];
    int first = (int)(k & 1); /* 0: hooked first */
    t[first] = stat_block(first ? direct : stat, path, block, &err);
    if (!err) t[!first] = stat_block(first ? stat : direct, path, block, &err);
    total[0] += t[0];
    total[1] += t[1];
    diff[k] = (double)(t[0] - t[1]) / (double)block;
    done += block;
  }
  if (!err) {
    qsort(diff, (size_t)k, sizeof *diff, cmp_double);
    out[0] = (double)total[0] / (double)n;
    out[1] = (double)total[1] / (double)n;
    out[2] = k % 2 ? diff[k / 2] : (diff[k / 2 - 1] + diff[k / 2]) / 2;
  }
  free(diff);
  return err;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: intercept_loop open|stat|statpair PATH N\n");
    return 2;
  }
  int (*loop)(const char *, long) = NULL;
  int pair = strcmp(argv[1], "statpair") == 0;
  if (strcmp(argv[1], "open") == 0) loop = run_open;
  else if (strcmp(argv[1], "stat") == 0 || pair) loop = run_stat;
  char *end;
  long n = strtol(argv[3], &end, 10);
  if (!loop || *end || n <= 0) {
    fprintf(stderr, "intercept_loop: want open|stat|statpair PATH N (N > 0), got %s %s %s\n",
            argv[1], argv[2], argv[3]);
    return 2;
  }
  long warm = n / 10 < 20000 ? n / 10 : 20000;
  if (loop(argv[2], warm > 0 ? warm : 1)) return 1;
  if (pair) {
    double r[3];
    if (run_statpair(argv[2], warm > 0 ? warm : 1, r) || run_statpair(argv[2], n, r)) return 1;
    printf("statpair %ld %.2f %.2f %.2f\n", n, r[0], r[1], r[2]);
    return 0;
  }
  long long t0 = now_ns();
  if (loop(argv[2], n)) return 1;
  long long t1 = now_ns();
  printf("%s %ld %.2f\n", argv[1], n, (double)(t1 - t0) / (double)n);
  return 0;
}
