/* mprotect: one anonymous reservation carved with mprotect into 4-page regions, each filled
 * with its own pattern first: PROT_READ, PROT_NONE, PROT_READ|PROT_WRITE, PROT_READ|PROT_EXEC
 * (x86_64: a copied 6-byte function "mov eax, 42; ret"), between PROT_NONE guard pages; plus
 * a 16-page MAP_SHARED|MAP_ANONYMOUS region shared with a forked child (the parent wrote pages
 * 0-7, the child pages 8-15).
 * At SIGTERM: /proc/self/maps shows each region with its permissions (r--p, ---p, rw-p,
 * r-xp, rw-s) and no wider; contents intact (the PROT_NONE one is made readable to look);
 * the copied function returns 42; the sharing still works both ways: a new value written by
 * the parent is read by the child (over a pipe round trip) and the child's reply written into
 * the shared page is seen by the parent; the child exits on EOF and is reaped.
 * CKPT_SELFTEST_BREAK: 1 the rw region made read-only, 2 a byte of the read-only region
 * changed, 3 the shared region replaced by a private copy, 4 the function patched to return 43. */
#include "ckpt_common.h"
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096UL
#define RPAGES 4
#define SHARED_PAGES 16
#define TOKEN_WORD 8 /* in page 0 of the shared region: written by the parent at SIGTERM */
#define REPLY_WORD 9 /* written by the child in reply */
#define WORDS (PAGE / 8)

struct region {
    const char *name;
    int prot;
    const char *perms;
    unsigned char *addr;
};

static struct region regions[] = {
    {"read-only", PROT_READ, "r--p", NULL},
    {"no-access", PROT_NONE, "---p", NULL},
    {"read-write", PROT_READ | PROT_WRITE, "rw-p", NULL},
    {"exec", PROT_READ | PROT_EXEC, "r-xp", NULL},
};
#define NREGIONS (sizeof regions / sizeof *regions)
static const unsigned char code42[] = {0xB8, 0x2A, 0x00, 0x00, 0x00, 0xC3}; /* mov eax,42; ret */

static volatile uint64_t *shared;
static pid_t child;
static int req_w, rep_r;

static unsigned char pattern(size_t region, size_t i) { return (unsigned char)(i * (region + 3) + region * 50 + (i >> 12)); }
static uint64_t shared_word(size_t i) { return 0x5A5A000000000000ull + i * 0x10001ull; }

static void child_loop(int req_r, int rep_w)
{
    for (size_t i = 8 * WORDS; i < SHARED_PAGES * WORDS; i++)
        shared[i] = shared_word(i);
    ckpt_write_all(rep_w, "r", 1);
    for (;;) {
        char c;
        if (read(req_r, &c, 1) != 1)
            _exit(0);
        uint64_t token = shared[TOKEN_WORD];
        shared[REPLY_WORD] = ~token;
        ckpt_write_all(rep_w, (const char *)&token, sizeof token);
    }
}

static void setup_shared(void)
{
    int req[2], rep[2];
    void *m = mmap(NULL, SHARED_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        ckpt_die("mmap shared: %s", strerror(errno));
    shared = m;
    for (size_t i = 0; i < 8 * WORDS; i++)
        shared[i] = shared_word(i);
    if (pipe2(req, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0)
        ckpt_die("pipe: %s", strerror(errno));
    child = fork();
    if (child < 0)
        ckpt_die("fork: %s", strerror(errno));
    if (child == 0) {
        close(req[1]);
        close(rep[0]);
        child_loop(req[0], rep[1]);
    }
    close(req[0]);
    close(rep[1]);
    req_w = req[1];
    rep_r = rep[0];
    char c;
    if (read(rep_r, &c, 1) != 1)
        ckpt_die("the child did not start");
}

static void setup_regions(void)
{
    size_t total = (2 + NREGIONS * RPAGES) * PAGE;
    unsigned char *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        ckpt_die("mmap reservation: %s", strerror(errno));
    for (size_t k = 0; k < NREGIONS; k++) {
        unsigned char *a = base + (1 + k * RPAGES) * PAGE;
        regions[k].addr = a;
        if (mprotect(a, RPAGES * PAGE, PROT_READ | PROT_WRITE) != 0)
            ckpt_die("mprotect: %s", strerror(errno));
        for (size_t i = 0; i < RPAGES * PAGE; i++)
            a[i] = pattern(k, i);
        if (regions[k].prot & PROT_EXEC)
            memcpy(a, code42, sizeof code42);
        if (mprotect(a, RPAGES * PAGE, regions[k].prot) != 0)
            ckpt_die("mprotect %s: %s", regions[k].name, strerror(errno));
    }
}

static void check_regions(void)
{
    for (size_t k = 0; k < NREGIONS; k++) {
        struct region *r = &regions[k];
        ckpt_check_mapping(r->name, r->addr, RPAGES * PAGE, r->perms, 1);
        if (r->prot == PROT_NONE && mprotect(r->addr, RPAGES * PAGE, PROT_READ) != 0) {
            ckpt_fail("%s: mprotect to look: %s", r->name, strerror(errno));
            continue;
        }
        size_t from = (r->prot & PROT_EXEC) ? sizeof code42 : 0;
        if ((r->prot & PROT_EXEC) && memcmp(r->addr, code42, sizeof code42) != 0)
            ckpt_fail("%s: code bytes changed", r->name);
        for (size_t i = from; i < RPAGES * PAGE; i++) {
            if (r->addr[i] != pattern(k, i)) {
                ckpt_fail("%s: byte %zu (page %zu) is %#x, want %#x", r->name, i, i / PAGE,
                          r->addr[i], pattern(k, i));
                break;
            }
        }
        if (r->prot == PROT_NONE)
            mprotect(r->addr, RPAGES * PAGE, PROT_NONE);
    }
#ifdef __x86_64__
    int (*fn)(void) = (int (*)(void))(void *)regions[3].addr;
    int v = fn();
    if (v != 42)
        ckpt_fail("the copied function returned %d, want 42", v);
#endif
}

static void check_shared(void)
{
    ckpt_check_mapping("shared", (const void *)shared, SHARED_PAGES * PAGE, "rw-s", 1);
    for (size_t i = 0; i < SHARED_PAGES * WORDS; i++) {
        if (shared[i] != shared_word(i)) {
            ckpt_fail("shared word %zu (page %zu, written by the %s) is %#llx, want %#llx", i,
                      i / WORDS, i < 8 * WORDS ? "parent" : "child",
                      (unsigned long long)shared[i], (unsigned long long)shared_word(i));
            break;
        }
    }
    uint64_t token = 0x70C3E00000000000ull ^ ((uint64_t)getpid() << 16) ^ 0xBEEF, reply = 0;
    shared[TOKEN_WORD] = token;
    if (write(req_w, "S", 1) != 1) {
        ckpt_fail("request to the child: %s", strerror(errno));
        return;
    }
    struct pollfd p = {rep_r, POLLIN, 0};
    if (poll(&p, 1, 3000) != 1 || read(rep_r, &reply, sizeof reply) != (ssize_t)sizeof reply) {
        ckpt_fail("the child did not answer");
        return;
    }
    if (reply != token)
        ckpt_fail("the child read %#llx from the shared page, the parent wrote %#llx (not shared)",
                  (unsigned long long)reply, (unsigned long long)token);
    if (shared[REPLY_WORD] != ~token)
        ckpt_fail("the parent sees %#llx where the child wrote %#llx (not shared)",
                  (unsigned long long)shared[REPLY_WORD], (unsigned long long)~token);
}

static void reap_child(void)
{
    int st = 0;
    pid_t r = 0;
    close(req_w);
    double deadline = ckpt_now() + 3.0;
    while ((r = waitpid(child, &st, WNOHANG)) == 0 && ckpt_now() < deadline)
        ckpt_sleep_ms(5);
    if (r == 0) {
        ckpt_fail("the child did not exit on EOF");
        kill(child, SIGKILL);
        waitpid(child, &st, 0);
    } else if (r != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        ckpt_fail("the child ended with status %#x (waitpid %d)", st, (int)r);
    }
}

static void apply_break(int brk)
{
    if (brk == 1) {
        ckpt_note_break("the rw region made read-only");
        mprotect(regions[2].addr, RPAGES * PAGE, PROT_READ);
    } else if (brk == 2) {
        ckpt_note_break("a byte of the read-only region changed");
        mprotect(regions[0].addr, RPAGES * PAGE, PROT_READ | PROT_WRITE);
        regions[0].addr[PAGE + 5] ^= 0x80;
        mprotect(regions[0].addr, RPAGES * PAGE, PROT_READ);
    } else if (brk == 3) {
        static uint64_t copy[SHARED_PAGES * WORDS];
        ckpt_note_break("the shared region replaced by a private copy");
        memcpy(copy, (const void *)shared, sizeof copy);
        mmap((void *)shared, sizeof copy, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        memcpy((void *)shared, copy, sizeof copy);
    } else if (brk == 4) {
        ckpt_note_break("the copied function patched to return 43");
        mprotect(regions[3].addr, RPAGES * PAGE, PROT_READ | PROT_WRITE);
        regions[3].addr[1] = 0x2B;
        mprotect(regions[3].addr, RPAGES * PAGE, PROT_READ | PROT_EXEC);
    }
}

int main(void)
{
    ckpt_init("mprotect");
    signal(SIGPIPE, SIG_IGN);
    setup_shared();
    setup_regions();
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    check_regions();
    check_shared();
    reap_child();
    ckpt_finish();
}
