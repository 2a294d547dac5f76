/* dirtier: a large memory app that keeps dirtying its pages (live migration, issue 7).
 *
 *   dirtier [MiB [MB_PER_S]]      (defaults: 1024 MiB, 50 MB/s; 1 MB = 10^6 bytes)
 *
 * Allocates MiB of anonymous private memory; page p holds a pattern of (p, version[p]), the
 * versions kept in a mapping of their own. Once every page is filled it writes "READY". Then,
 * paced by CLOCK_MONOTONIC (ticks of 5 ms, a backlog of at most 100 ms: after a restore on
 * another host the clock may jump), it rewrites random pages with version + 1 at MB_PER_S.
 * On SIGTERM every page is checked against its version: "PASS dirtier", or "FAIL dirtier page
 * N" (the first bad page, and how many are bad) and exit 1. Before that verdict, on fd 1:
 * "dirtier: stalls over 20 ms: A B ... (longest L ms)", the gaps between two ticks of its
 * loop in ms, in order (at most 64): what a freeze or a migration cost the app as it saw it
 * (CLOCK_MONOTONIC: meaningful between two namespaces of one host). To stderr: the pages
 * rewritten.
 * CKPT_SELFTEST_BREAK=1: one word of a random page is changed before the check (must FAIL).
 * Plain C, linked -static too (busybox bundles); the fd 1 protocol of tests/ckpt. */
#include "../ckpt/ckpt_common.h"
#include <sys/mman.h>

#define PAGE 4096UL
#define WORDS (PAGE / 8)

static uint64_t *mem;
static uint32_t *version;
static size_t pages;
static uint64_t rng = 0x243F6A8885A308D3ull;
#define MAX_STALLS 64
static long long stalls[MAX_STALLS];
static int nstalls;
static long long longest;

static inline uint64_t word_of(uint64_t page, uint64_t w, uint64_t v)
{
    return ((page + 1) * 0x9E3779B97F4A7C15ull) ^ (v << 40) ^ ((w + 1) * 0x100000001b3ull) ^ (v * 0xD6E8FEB86659FD93ull);
}

static inline uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_page(uint64_t p, uint64_t v)
{
    uint64_t *m = mem + p * WORDS;
    for (size_t w = 0; w < WORDS; w++)
        m[w] = word_of(p, w, v);
}

static void *map(size_t bytes)
{
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void print_stalls(void)
{
    char buf[64 * 12 + 128];
    int n = snprintf(buf, sizeof buf, "dirtier: stalls over 20 ms:");
    for (int i = 0; i < nstalls; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, " %lld", stalls[i]);
    n += snprintf(buf + n, sizeof buf - (size_t)n, " (longest %lld ms)\n", longest);
    ckpt_write_all(1, buf, (size_t)n);
}

static void verify(unsigned long long rewritten)
{
    char buf[160];
    print_stalls();
    size_t bad = 0, first = 0;
    for (size_t p = 0; p < pages; p++) {
        const uint64_t *m = mem + p * WORDS;
        for (size_t w = 0; w < WORDS; w++)
            if (m[w] != word_of(p, w, version[p])) {
                if (bad++ == 0)
                    first = p;
                break;
            }
    }
    int n = snprintf(buf, sizeof buf, "dirtier: %llu pages rewritten\n", rewritten);
    ckpt_write_all(2, buf, (size_t)n);
    if (ckpt_pid_at_ready != getpid()) {
        n = snprintf(buf, sizeof buf, "FAIL dirtier pid changed: %d at READY, %d now\n", (int)ckpt_pid_at_ready, (int)getpid());
        ckpt_write_all(1, buf, (size_t)n);
        _exit(1);
    }
    if (bad == 0) {
        ckpt_write_all(1, "PASS dirtier\n", 13);
        _exit(0);
    }
    n = snprintf(buf, sizeof buf, "FAIL dirtier page %zu (%zu pages bad)\n", first, bad);
    ckpt_write_all(1, buf, (size_t)n);
    _exit(1);
}

int main(int argc, char **argv)
{
    ckpt_init("dirtier");
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
    double rate = argc > 2 ? strtod(argv[2], NULL) : 50.0;
    if (mib == 0 || rate < 0)
        ckpt_die("usage: dirtier [MiB [MB_PER_S]]");
    pages = mib * (1UL << 20) / PAGE;
    mem = map(pages * PAGE);
    version = map((pages * sizeof *version + PAGE - 1) / PAGE * PAGE);
    if (!mem || !version)
        ckpt_die("mmap %zu MiB: %s", mib, strerror(errno));
    rng ^= (uint64_t)now_ns() * 0x9E3779B97F4A7C15ull;
    if (rng == 0)
        rng = 1;
    for (size_t p = 0; p < pages; p++)
        fill_page(p, 0);
    ckpt_ready();

    const long long tick = 5000000LL, max_backlog = 100000000LL;
    double pages_per_ns = rate * 1e6 / PAGE / 1e9;
    long long t0 = now_ns(), last = t0;
    double owed = 0;
    unsigned long long rewritten = 0;
    while (!ckpt_term) {
        long long t = now_ns(), dt = t - last;
        last = t;
        long long gap_ms = dt / 1000000LL;
        if (gap_ms > longest)
            longest = gap_ms;
        if (gap_ms > 20 && nstalls < MAX_STALLS)
            stalls[nstalls++] = gap_ms;
        if (dt > max_backlog || dt < 0)
            dt = max_backlog;
        owed += (double)dt * pages_per_ns;
        while (owed >= 1.0 && !ckpt_term) {
            uint64_t p = next_rand() % pages;
            fill_page(p, version[p] + 1);
            version[p]++;
            owed -= 1.0;
            rewritten++;
        }
        ckpt_sleep_ms(tick / 1000000LL);
    }
    (void)t0;
    if (ckpt_break() == 1) {
        uint64_t p = next_rand() % pages;
        ckpt_note_break("one word of a page changed");
        mem[p * WORDS + 7] ^= 1;
    }
    verify(rewritten);
}
