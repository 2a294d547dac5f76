/* intercept-files-bench: the cost the interception library adds to a call, measured in
 * one process: rounds through the symbol the program links to (the hook when the library
 * is preloaded) alternate with rounds through libc's own function (dlsym on libc.so.6),
 * and the best round of each is kept.
 * Usage: intercept-files-bench STAT_PATH OPEN_PATH NATIVE_OPEN_PATH N
 *   stat of STAT_PATH (through the hook) vs stat of the same path in libc;
 *   open+close of OPEN_PATH (through the hook, e.g. a redirected inside path) vs
 *   open+close of NATIVE_OPEN_PATH in libc (e.g. the outside file itself).
 * Prints ns per call: "stat hooked native" and "open+close hooked native". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef int (*stat_fn)(const char*, struct stat*);
typedef int (*open_fn)(const char*, int, ...);
typedef int (*close_fn)(int);

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double round_stat(stat_fn f, const char* p, long n) {
  struct stat st;
  double t = now_ns();
  for (long i = 0; i < n; ++i)
    if (f(p, &st) != 0) { perror(p); exit(1); }
  return (now_ns() - t) / n;
}

static double round_open(open_fn o, close_fn c, const char* p, long n) {
  double t = now_ns();
  for (long i = 0; i < n; ++i) {
    int fd = o(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror(p); exit(1); }
    c(fd);
  }
  return (now_ns() - t) / n;
}

static double min(double a, double b) { return a < b ? a : b; }

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s STAT_PATH OPEN_PATH NATIVE_OPEN_PATH N\n", argv[0]);
    return 2;
  }
  long n = atol(argv[4]);
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  stat_fn libc_stat = libc ? (stat_fn)dlsym(libc, "stat") : NULL;
  open_fn libc_open = libc ? (open_fn)dlsym(libc, "open") : NULL;
  close_fn libc_close = libc ? (close_fn)dlsym(libc, "close") : NULL;
  if (!libc_stat || !libc_open || !libc_close) {
    fprintf(stderr, "cannot find libc's functions\n");
    return 1;
  }
  double hs = 1e18, ns = 1e18, ho = 1e18, no = 1e18;
  round_stat(stat, argv[1], n / 10 + 1);
  round_open(open, close, argv[2], n / 10 + 1);
  for (int r = 0; r < 7; ++r) {
    ns = min(ns, round_stat(libc_stat, argv[1], n));
    hs = min(hs, round_stat(stat, argv[1], n));
    no = min(no, round_open(libc_open, libc_close, argv[3], n));
    ho = min(ho, round_open(open, close, argv[2], n));
  }
  printf("stat %.1f %.1f\nopen+close %.1f %.1f\n", hs, ns, ho, no);
  return 0;
}
