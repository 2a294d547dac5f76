/* Shared protocol of the checkpoint test programs (tests/ckpt/README.md).
 *
 * A program sets up its state, writes "READY\n" to fd 1, then runs until SIGTERM. The SIGTERM
 * handler only sets a flag; the main loop then verifies the state and writes
 * "PASS <name>\n" (exit 0) or "FAIL <name>: <reason>; <reason>...\n" (exit 1). A setup error
 * before READY writes "FAIL <name>: setup: ..." and exits 2.
 *
 * CKPT_SELFTEST_BREAK=N (N >= 1) makes a program corrupt one piece of its own state right
 * before verifying (each program documents its N); the verification must then FAIL. It proves
 * that every check can fail. Plain C, no stdio on fd 1, works when linked -static.
 */
#ifndef CKPT_COMMON_H
#define CKPT_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t ckpt_term;
static const char *ckpt_name = "?";
static pid_t ckpt_pid_at_ready;
static char ckpt_reasons[4096];
static size_t ckpt_reasons_len;

static inline void ckpt_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static void ckpt_on_term(int sig)
{
    (void)sig;
    ckpt_term = 1;
}

/* Names the program and installs the SIGTERM flag handler. */
static inline void ckpt_init(const char *name)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ckpt_on_term;
    sigemptyset(&sa.sa_mask);
    ckpt_name = name;
    sigaction(SIGTERM, &sa, NULL);
}

/* The self-test hook: 0 when CKPT_SELFTEST_BREAK is unset. */
static inline int ckpt_break(void)
{
    const char *v = getenv("CKPT_SELFTEST_BREAK");
    return v ? atoi(v) : 0;
}

static inline void ckpt_note_break(const char *what)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s: selftest break: %s\n", ckpt_name, what);
    ckpt_write_all(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A setup error (before READY): say so and exit 2. */
__attribute__((format(printf, 1, 2), noreturn)) static inline void ckpt_die(const char *fmt, ...)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "FAIL %s: setup: ", ckpt_name);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n - 2, fmt, ap);
    va_end(ap);
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ckpt_write_all(1, buf, (size_t)n);
    _exit(2);
}

static inline void ckpt_ready(void)
{
    ckpt_pid_at_ready = getpid();
    ckpt_write_all(1, "READY\n", 6);
}

static inline void ckpt_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline void ckpt_wait_term(void)
{
    while (!ckpt_term)
        ckpt_sleep_ms(10);
}

/* Seconds on CLOCK_MONOTONIC: only for bounded waits after SIGTERM, never across READY. */
static inline double ckpt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Records one failed check (what differed); verification goes on to report them all. */
__attribute__((format(printf, 1, 2))) static inline void ckpt_fail(const char *fmt, ...)
{
    size_t room = sizeof ckpt_reasons - ckpt_reasons_len;
    if (room < 8)
        return;
    if (ckpt_reasons_len > 0) {
        memcpy(ckpt_reasons + ckpt_reasons_len, "; ", 2);
        ckpt_reasons_len += 2;
        room -= 2;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ckpt_reasons + ckpt_reasons_len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        ckpt_reasons_len += (size_t)n < room ? (size_t)n : room - 1;
}

static inline int ckpt_failed(void) { return ckpt_reasons_len > 0; }

/* Writes PASS or FAIL and exits 0 or 1. Also checks that the pid is the one of READY. */
__attribute__((noreturn)) static inline void ckpt_finish(void)
{
    char buf[sizeof ckpt_reasons + 128];
    int n;
    if (ckpt_pid_at_ready != 0 && getpid() != ckpt_pid_at_ready)
        ckpt_fail("pid changed: %d at READY, %d now", (int)ckpt_pid_at_ready, (int)getpid());
    if (!ckpt_failed()) {
        n = snprintf(buf, sizeof buf, "PASS %s\n", ckpt_name);
        ckpt_write_all(1, buf, (size_t)n);
        _exit(0);
    }
    n = snprintf(buf, sizeof buf, "FAIL %s: %.*s\n", ckpt_name, (int)ckpt_reasons_len, ckpt_reasons);
    ckpt_write_all(1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    _exit(1);
}

/* The /proc/self/maps line that contains addr: its range and its 4 permission letters.
 * Returns 0 when found, -1 otherwise. */
static inline int ckpt_maps_find(unsigned long addr, unsigned long *start, unsigned long *end,
                                 char perms[5])
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    int found = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &s, &e, p) != 3)
            continue;
        if (addr >= s && addr < e) {
            *start = s;
            *end = e;
            memcpy(perms, p, 5);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

/* Checks that [addr, addr+len) is mapped, all with permissions want ("rw-p"), possibly in
 * several lines of /proc/self/maps; when exact, the memory just below and just above the range
 * must not have those permissions (the region has its own mapping). Records failures. */
static inline void ckpt_check_mapping(const char *region, const void *addr, size_t len,
                                      const char *want, int exact)
{
    unsigned long a = (unsigned long)addr, cur = a, s, e;
    char p[5];
    while (cur < a + len) {
        if (ckpt_maps_find(cur, &s, &e, p) != 0) {
            ckpt_fail("%s: nothing mapped at %#lx in /proc/self/maps", region, cur);
            return;
        }
        if (strcmp(p, want) != 0) {
            ckpt_fail("%s: permissions %s at %#lx, want %s", region, p, cur, want);
            return;
        }
        cur = e;
    }
    if (!exact)
        return;
    if (ckpt_maps_find(a - 1, &s, &e, p) == 0 && strcmp(p, want) == 0)
        ckpt_fail("%s: the %s mapping extends below %#lx (to %#lx)", region, want, a, s);
    if (ckpt_maps_find(a + len, &s, &e, p) == 0 && strcmp(p, want) == 0)
        ckpt_fail("%s: the %s mapping extends above %#lx (to %#lx)", region, want, a + len, e);
}

#endif
