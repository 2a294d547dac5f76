/* pipe: pipe A (blocking) holds 5000 known bytes written before READY and never read;
 * pipe B (O_NONBLOCK on both ends, F_SETPIPE_SZ 128 KiB) is filled to capacity with another
 * known pattern. Both stay unread until SIGTERM.
 * At SIGTERM: A's flags, FIONREAD == 5000, its bytes read back in order, then empty; B's pipe
 * size, O_NONBLOCK on both ends, still full (a 1-byte write gets EAGAIN), FIONREAD == all bytes,
 * its bytes drained in order until EAGAIN.
 * CKPT_SELFTEST_BREAK: 1 one byte of A read early, 2 O_NONBLOCK cleared on B's read end,
 * 3 4096 bytes of B read and written back (order changed). */
#include "ckpt_common.h"
#include <poll.h>
#include <sys/ioctl.h>

#define A_BYTES 5000
#define B_SIZE (128 * 1024)

static int a[2], b[2];
static size_t b_bytes;

static unsigned char pattern_a(size_t i) { return (unsigned char)(i * 7 + 3 + (i >> 8)); }
static unsigned char pattern_b(size_t i) { return (unsigned char)(i * 13 + 1 + (i >> 9)); }

static void setup(void)
{
    unsigned char buf[4096];
    if (pipe2(a, 0) != 0 || pipe2(b, O_NONBLOCK) != 0)
        ckpt_die("pipe2: %s", strerror(errno));
    unsigned char data[A_BYTES];
    for (size_t i = 0; i < A_BYTES; i++)
        data[i] = pattern_a(i);
    if (write(a[1], data, A_BYTES) != A_BYTES)
        ckpt_die("write to pipe A: %s", strerror(errno));
    if (fcntl(b[1], F_SETPIPE_SZ, B_SIZE) != B_SIZE)
        ckpt_die("F_SETPIPE_SZ %d: %s", B_SIZE, strerror(errno));
    for (;;) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = pattern_b(b_bytes + i);
        ssize_t n = write(b[1], buf, sizeof buf);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            ckpt_die("write to pipe B: %s", strerror(errno));
        b_bytes += (size_t)n;
    }
    if (b_bytes != B_SIZE)
        ckpt_die("pipe B took %zu bytes, want %d", b_bytes, B_SIZE);
}

/* Reads up to len bytes while the fd is readable (never blocks). */
static size_t drain(int fd, unsigned char *out, size_t len)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
            break;
        ssize_t n = read(fd, out + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static int unread(int fd)
{
    int n = -1;
    ioctl(fd, FIONREAD, &n);
    return n;
}

static void compare(const char *which, const unsigned char *got, size_t n,
                    unsigned char (*pattern)(size_t))
{
    for (size_t i = 0; i < n; i++) {
        if (got[i] != pattern(i)) {
            ckpt_fail("pipe %s byte %zu is %#x, want %#x", which, i, got[i], pattern(i));
            return;
        }
    }
}

static void check_a(void)
{
    static unsigned char got[A_BYTES + 16];
    int fl = fcntl(a[0], F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK) || (fl & O_ACCMODE) != O_RDONLY)
        ckpt_fail("pipe A read end flags %#x, want O_RDONLY without O_NONBLOCK", fl);
    int n = unread(a[0]);
    if (n != A_BYTES)
        ckpt_fail("pipe A FIONREAD %d, want %d", n, A_BYTES);
    size_t got_n = drain(a[0], got, sizeof got);
    if (got_n != A_BYTES)
        ckpt_fail("pipe A gave %zu bytes, want %d", got_n, A_BYTES);
    compare("A", got, got_n, pattern_a);
    if (unread(a[0]) != 0)
        ckpt_fail("pipe A not empty after reading %d bytes", A_BYTES);
}

static void check_b(void)
{
    static unsigned char got[B_SIZE + 16];
    int sz = fcntl(b[0], F_GETPIPE_SZ);
    if (sz != B_SIZE)
        ckpt_fail("pipe B size %d, want %d", sz, B_SIZE);
    for (int end = 0; end < 2; end++) {
        int fl = fcntl(b[end], F_GETFL);
        if (fl < 0 || !(fl & O_NONBLOCK))
            ckpt_fail("pipe B %s end flags %#x lack O_NONBLOCK", end ? "write" : "read", fl);
    }
    errno = 0;
    if (write(b[1], "x", 1) != -1 || errno != EAGAIN)
        ckpt_fail("pipe B is not full any more (1-byte write: %s)", strerror(errno));
    int n = unread(b[0]);
    if (n != (int)b_bytes)
        ckpt_fail("pipe B FIONREAD %d, want %zu", n, b_bytes);
    size_t got_n = drain(b[0], got, sizeof got);
    if (got_n != b_bytes)
        ckpt_fail("pipe B gave %zu bytes, want %zu", got_n, b_bytes);
    compare("B", got, got_n, pattern_b);
    errno = 0;
    if ((fcntl(b[0], F_GETFL) & O_NONBLOCK) && (read(b[0], got, 1) != -1 || errno != EAGAIN))
        ckpt_fail("pipe B read after draining did not give EAGAIN (%s)", strerror(errno));
}

static void apply_break(int brk)
{
    unsigned char buf[4096];
    if (brk == 1) {
        ckpt_note_break("one byte of pipe A read");
        if (read(a[0], buf, 1) != 1)
            ckpt_fail("selftest read failed");
    } else if (brk == 2) {
        ckpt_note_break("O_NONBLOCK cleared on pipe B's read end");
        fcntl(b[0], F_SETFL, fcntl(b[0], F_GETFL) & ~O_NONBLOCK);
    } else if (brk == 3) {
        ckpt_note_break("4096 bytes of pipe B moved to its end");
        if (read(b[0], buf, sizeof buf) != (ssize_t)sizeof buf ||
            write(b[1], buf, sizeof buf) != (ssize_t)sizeof buf)
            ckpt_fail("selftest move failed");
    }
}

int main(void)
{
    ckpt_init("pipe");
    setup();
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    check_a();
    check_b();
    ckpt_finish();
}
