/* dirty: memory that changes between incremental checkpoints. An anonymous private mapping of
 * MiB (argv[1], default 64): every page holds a pattern of (page, version), version 0 at READY.
 * SIGUSR1 runs one round r (1, 2, ...) in the main loop: 1% of the pages (another set each
 * round) get version r, then 0.1% are dropped with MADV_DONTNEED (zero from then on, until a
 * later round writes them), then a new 1 MiB mapping is made holding round r's pattern; then
 * "ROUND r" is written to fd 1. At SIGTERM every page must hold what the rounds made of it (the
 * history is recomputed from the round count, nothing else is trusted), and each round mapping
 * its pattern. With argv[2] "writes-only" a round only writes its 1% (bench/ckpt_incr).
 * CKPT_SELFTEST_BREAK: 1 a page written in the last round holds its previous version again,
 * 2 a dropped page written, 3 one word of the last round's mapping changed (before any round,
 * each of them changes one word of the middle page). */
#include "ckpt_common.h"
#include <sys/mman.h>

#define PAGE 4096UL
#define WORDS (PAGE / 8)
#define ROUND_BYTES (1UL << 20)
#define MAX_ROUNDS 64

static uint64_t *big;
static size_t pages;
static volatile int rounds;
static uint64_t *round_map[MAX_ROUNDS + 1];
static volatile sig_atomic_t usr1;
static int writes_only;

static void on_usr1(int sig)
{
    (void)sig;
    usr1 = 1;
}

static inline uint64_t word_of(uint64_t page, uint64_t w, uint64_t version)
{
    return ((page + 1) * 0x9E3779B97F4A7C15ull) ^ (version << 40) ^ (w * 0x100000001b3ull);
}

static int written_in(uint64_t p, uint64_t r) { return (p * 2654435761ull + r * 40503ull) % 100 == 0; }
static int dropped_in(uint64_t p, uint64_t r) { return !writes_only && (p * 7919ull + r * 104729ull) % 1000 == 1; }

static void fill_page(uint64_t *m, uint64_t p, uint64_t version)
{
    for (size_t w = 0; w < WORDS; w++)
        m[p * WORDS + w] = word_of(p, w, version);
}

static void *map(size_t bytes)
{
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* One round: writes, drops, a new mapping. Returns 0, or -1 when out of rounds or memory. */
static int do_round(void)
{
    int r = rounds + 1;
    if (r > MAX_ROUNDS)
        return -1;
    for (uint64_t p = 0; p < pages; p++)
        if (written_in(p, (uint64_t)r))
            fill_page(big, p, (uint64_t)r);
    for (uint64_t p = 0; p < pages; p++)
        if (dropped_in(p, (uint64_t)r))
            madvise((char *)big + p * PAGE, PAGE, MADV_DONTNEED);
    if (writes_only) {
        rounds = r;
        return 0;
    }
    uint64_t *m = map(ROUND_BYTES);
    if (!m)
        return -1;
    for (uint64_t p = 0; p < ROUND_BYTES / PAGE; p++)
        fill_page(m, p, 1000 + (uint64_t)r);
    round_map[r] = m;
    rounds = r;
    return 0;
}

/* After `done` rounds: -1 if page p reads zero, else its version. */
static long expected(uint64_t p, int done)
{
    long v = 0;
    for (int r = 1; r <= done; r++) {
        if (written_in(p, (uint64_t)r))
            v = r;
        if (dropped_in(p, (uint64_t)r))
            v = -1;
    }
    return v;
}

static void verify(void)
{
    int done = rounds;
    size_t bad = 0;
    for (uint64_t p = 0; p < pages; p++) {
        long v = expected(p, done);
        for (size_t w = 0; w < WORDS; w++) {
            uint64_t want = v < 0 ? 0 : word_of(p, w, (uint64_t)v);
            if (big[p * WORDS + w] != want) {
                if (bad++ == 0)
                    ckpt_fail("page %llu (after %d rounds, version %ld): word %zu is %#llx, want %#llx",
                              (unsigned long long)p, done, v, w,
                              (unsigned long long)big[p * WORDS + w], (unsigned long long)want);
                break;
            }
        }
    }
    if (bad > 1)
        ckpt_fail("%zu bad pages in all", bad);
    for (int r = 1; r <= done && !writes_only; r++) {
        if (!round_map[r]) {
            ckpt_fail("round %d's mapping is missing", r);
            continue;
        }
        ckpt_check_mapping("round mapping", round_map[r], ROUND_BYTES, "rw-p", 0);
        for (uint64_t p = 0; p < ROUND_BYTES / PAGE; p++)
            for (size_t w = 0; w < WORDS; w++)
                if (round_map[r][p * WORDS + w] != word_of(p, w, 1000 + (uint64_t)r)) {
                    ckpt_fail("round %d's mapping: page %llu word %zu changed", r, (unsigned long long)p, w);
                    p = ROUND_BYTES / PAGE;
                    break;
                }
    }
}

static void apply_break(int brk)
{
    int r = rounds;
    if (brk >= 1 && brk <= 3 && r == 0) {
        ckpt_note_break("no round yet: one word of the middle page changed");
        big[pages / 2 * WORDS] ^= 1;
    } else if (brk == 1) {
        ckpt_note_break("a page written in the last round holds its previous version");
        for (uint64_t p = 0; p < pages; p++)
            if (written_in(p, (uint64_t)r) && expected(p, r) == r) {
                long before = expected(p, r - 1);
                if (before < 0)
                    memset((char *)big + p * PAGE, 0, PAGE);
                else
                    fill_page(big, p, (uint64_t)before);
                break;
            }
    } else if (brk == 2) {
        ckpt_note_break("a dropped page written");
        for (uint64_t p = 0; p < pages; p++)
            if (expected(p, r) < 0) {
                big[p * WORDS + 3] = 1;
                break;
            }
    } else if (brk == 3 && !writes_only) {
        ckpt_note_break("one word of the last round's mapping changed");
        round_map[r][77] ^= 1;
    }
}

int main(int argc, char **argv)
{
    ckpt_init("dirty");
    long mib = argc > 1 ? atol(argv[1]) : 64;
    if (mib <= 0)
        ckpt_die("size \"%s\" MiB is not a positive number", argv[1]);
    writes_only = argc > 2 && strcmp(argv[2], "writes-only") == 0;
    pages = ((size_t)mib << 20) / PAGE;
    big = map(pages * PAGE);
    if (!big)
        ckpt_die("mmap of %ld MiB: %s", mib, strerror(errno));
    for (uint64_t p = 0; p < pages; p++)
        fill_page(big, p, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    ckpt_ready();
    while (!ckpt_term) {
        if (usr1) {
            usr1 = 0;
            char line[32];
            int n = do_round() == 0 ? snprintf(line, sizeof line, "ROUND %d\n", rounds)
                                    : snprintf(line, sizeof line, "NO ROUND %d\n", rounds + 1);
            ckpt_write_all(1, line, (size_t)n);
        }
        ckpt_sleep_ms(5);
    }
    apply_break(ckpt_break());
    verify();
    ckpt_finish();
}
