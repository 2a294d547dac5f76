/* bigmem: an anonymous private mapping of SIZE MiB (argv[1], default 1024) with every 8-byte
 * word of every page set from the page index and the word index; a 64 MiB mapping never
 * touched (must read as zero); a 16 MiB mapping whose pages were all written, then the odd
 * ones dropped with MADV_DONTNEED (odd pages zero, even pages a second pattern).
 * At SIGTERM: the three mappings are still there (rw-p in /proc/self/maps) and every word of
 * every page is as set; the first bad page is reported with what it holds.
 * CKPT_SELFTEST_BREAK: 1 one word of the big mapping changed, 2 a page of the zero mapping
 * written, 3 a dropped page of the 16 MiB mapping written. */
#include "ckpt_common.h"
#include <sys/mman.h>

#define PAGE 4096UL
#define WORDS (PAGE / 8)
#define ZERO_BYTES (64UL << 20)
#define HOLES_BYTES (16UL << 20)

static uint64_t *big, *zero, *holes;
static size_t big_pages;

static inline uint64_t word_of(uint64_t page, uint64_t w, uint64_t salt)
{
    return ((page + salt) * 0x9E3779B97F4A7C15ull) ^ (w << 52) ^ w;
}

static void fill(uint64_t *m, size_t pages, uint64_t salt)
{
    for (size_t p = 0; p < pages; p++)
        for (size_t w = 0; w < WORDS; w++)
            m[p * WORDS + w] = word_of(p, w, salt);
}

static void *map(size_t bytes, const char *what)
{
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        ckpt_die("mmap of %zu bytes (%s): %s", bytes, what, strerror(errno));
    return m;
}

static void setup(size_t mib)
{
    big_pages = (mib << 20) / PAGE;
    big = map(big_pages * PAGE, "big");
    zero = map(ZERO_BYTES, "zero");
    holes = map(HOLES_BYTES, "holes");
    fill(big, big_pages, 0);
    fill(holes, HOLES_BYTES / PAGE, 12345);
    for (size_t p = 1; p < HOLES_BYTES / PAGE; p += 2)
        if (madvise((char *)holes + p * PAGE, PAGE, MADV_DONTNEED) != 0)
            ckpt_die("madvise: %s", strerror(errno));
}

/* Pages [0, pages) of m hold pattern salt (or zero when salt < 0, or zero on odd pages when
 * odd_zero). Reports the first bad page and stops there. */
static void verify(const char *name, const uint64_t *m, size_t pages, long long salt, int odd_zero)
{
    for (size_t p = 0; p < pages; p++) {
        int want_zero = salt < 0 || (odd_zero && (p & 1));
        for (size_t w = 0; w < WORDS; w++) {
            uint64_t want = want_zero ? 0 : word_of(p, w, (uint64_t)salt);
            uint64_t got = m[p * WORDS + w];
            if (got != want) {
                ckpt_fail("%s mapping: first bad page %zu (address %p), word %zu is %#llx, want %#llx",
                          name, p, (const void *)(m + p * WORDS), w, (unsigned long long)got,
                          (unsigned long long)want);
                return;
            }
        }
    }
}

static void apply_break(int brk)
{
    if (brk == 1) {
        ckpt_note_break("one word of the big mapping changed");
        big[(big_pages / 2 + 3) * WORDS + 100] ^= 1;
    } else if (brk == 2) {
        ckpt_note_break("a page of the zero mapping written");
        zero[100 * WORDS + 7] = 1;
    } else if (brk == 3) {
        ckpt_note_break("a dropped page of the 16 MiB mapping written");
        holes[301 * WORDS] = 42;
    }
}

int main(int argc, char **argv)
{
    ckpt_init("bigmem");
    long mib = argc > 1 ? atol(argv[1]) : 1024;
    if (mib <= 0)
        ckpt_die("size \"%s\" MiB is not a positive number", argv[1]);
    setup((size_t)mib);
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    ckpt_check_mapping("big", big, big_pages * PAGE, "rw-p", 0);
    ckpt_check_mapping("zero", zero, ZERO_BYTES, "rw-p", 0);
    ckpt_check_mapping("holes", holes, HOLES_BYTES, "rw-p", 0);
    verify("big", big, big_pages, 0, 0);
    verify("zero", zero, ZERO_BYTES / PAGE, -1, 0);
    verify("holes", holes, HOLES_BYTES / PAGE, 12345, 1);
    ckpt_finish();
}
