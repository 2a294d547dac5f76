/* counter: a 64-bit counter incremented in a loop, cross-checked against a second variable and
 * a register-held copy each iteration, plus a 16 MiB heap pattern with a checksum.
 * At SIGTERM: the counter advanced past its READY value, never went backwards or jumped
 * (memory and registers agree), the heap pattern and its checksum are intact.
 * CKPT_SELFTEST_BREAK: 1 counter set back below READY, 2 one heap word flipped,
 * 3 counter bumped behind the loop's back (inconsistent with its shadow). */
#include "ckpt_common.h"

#define HEAP_BYTES (16u << 20)
#define HEAP_WORDS (HEAP_BYTES / 8)
#define BATCH 100000

static volatile uint64_t counter;       /* the counter */
static volatile uint64_t last_seen;     /* equals counter between iterations */
static volatile uint64_t inconsistencies;
static volatile uint64_t bad_counter, bad_last; /* the first inconsistent pair */
static uint64_t ready_value;
static uint64_t *heap;
static uint64_t heap_sum;

static uint64_t pattern(uint64_t i)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    return x * 0xBF58476D1CE4E5B9ull;
}

static uint64_t heap_checksum(void)
{
    uint64_t s = 0;
    for (size_t i = 0; i < HEAP_WORDS; i++)
        s = (s ^ heap[i]) * 0x100000001B3ull;
    return s;
}

/* BATCH increments; `local` lives in a register and must agree with memory every step. */
static void run_batch(void)
{
    uint64_t local = counter;
    for (int k = 0; k < BATCH; k++) {
        uint64_t c = counter;
        if (c != last_seen || c != local) {
            if (inconsistencies++ == 0) {
                bad_counter = c;
                bad_last = last_seen;
            }
        }
        local = c + 1;
        counter = local;
        last_seen = local;
    }
}

static void verify(uint64_t heap_sum_now)
{
    if (counter <= ready_value)
        ckpt_fail("counter %llu is not above its READY value %llu",
                  (unsigned long long)counter, (unsigned long long)ready_value);
    if (inconsistencies != 0)
        ckpt_fail("counter went backwards or jumped %llu times (first: counter %llu, last seen %llu)",
                  (unsigned long long)inconsistencies, (unsigned long long)bad_counter,
                  (unsigned long long)bad_last);
    if (heap_sum_now != heap_sum)
        ckpt_fail("heap checksum %#llx, want %#llx", (unsigned long long)heap_sum_now,
                  (unsigned long long)heap_sum);
    for (size_t i = 0; i < HEAP_WORDS; i++) {
        if (heap[i] != pattern(i)) {
            ckpt_fail("heap word %zu (offset %zu) is %#llx, want %#llx", i, i * 8,
                      (unsigned long long)heap[i], (unsigned long long)pattern(i));
            break;
        }
    }
}

int main(void)
{
    ckpt_init("counter");
    heap = malloc(HEAP_BYTES);
    if (!heap)
        ckpt_die("malloc of %u bytes failed", HEAP_BYTES);
    for (size_t i = 0; i < HEAP_WORDS; i++)
        heap[i] = pattern(i);
    heap_sum = heap_checksum();
    while (counter < 10 * BATCH)
        run_batch();
    ready_value = counter;
    ckpt_ready();
    while (!ckpt_term) {
        run_batch();
        ckpt_sleep_ms(1);
    }
    int brk = ckpt_break();
    if (brk == 3) {
        ckpt_note_break("counter bumped behind the loop");
        counter += 7;
    }
    run_batch();
    if (brk == 1) {
        ckpt_note_break("counter set back");
        counter = last_seen = ready_value - 5;
    }
    if (brk == 2) {
        ckpt_note_break("heap word flipped");
        heap[HEAP_WORDS / 2 + 77] ^= 0x10;
    }
    verify(heap_checksum());
    ckpt_finish();
}
