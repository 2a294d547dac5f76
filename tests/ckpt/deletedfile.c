/* deletedfile: creates a file in DIR (argv[1], default "."), writes 1 MiB of known data,
 * fchmod 0640, leaves the offset at 333333, unlinks the file and keeps the fd open.
 * At SIGTERM: fstat gives nlink 0, size 1 MiB, mode 0640; /proc/self/fd/N says "(deleted)";
 * the offset is still 333333; the whole content read back with pread matches; a read at the
 * current offset gives the bytes there (and moves the offset).
 * CKPT_SELFTEST_BREAK: 1 one byte changed, 2 the offset moved, 3 the file truncated,
 * 4 the mode changed. */
#include "ckpt_common.h"
#include <sys/stat.h>

#define SIZE (1u << 20)
#define OFFSET 333333

static int fd = -1;

static unsigned char pattern(size_t i) { return (unsigned char)((i * 2654435761u) >> 13); }

static void setup(const char *dir)
{
    static unsigned char buf[SIZE];
    char path[4096];
    snprintf(path, sizeof path, "%s/ckpt_deleted.XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        ckpt_die("mkostemp %s: %s", path, strerror(errno));
    for (size_t i = 0; i < SIZE; i++)
        buf[i] = pattern(i);
    if (write(fd, buf, SIZE) != (ssize_t)SIZE)
        ckpt_die("write %s: %s", path, strerror(errno));
    if (fchmod(fd, 0640) != 0 || lseek(fd, OFFSET, SEEK_SET) != OFFSET)
        ckpt_die("fchmod/lseek %s: %s", path, strerror(errno));
    if (unlink(path) != 0)
        ckpt_die("unlink %s: %s", path, strerror(errno));
}

static void check_stat(void)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ckpt_fail("fstat: %s", strerror(errno));
        return;
    }
    if (st.st_nlink != 0)
        ckpt_fail("nlink %lu, want 0 (the file is not the deleted one)", (unsigned long)st.st_nlink);
    if (st.st_size != SIZE)
        ckpt_fail("size %lld, want %u", (long long)st.st_size, SIZE);
    if ((st.st_mode & 07777) != 0640)
        ckpt_fail("mode %04o, want 0640", (unsigned)(st.st_mode & 07777));
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n >= 0) { /* /proc may be missing in a bare rootfs: then skip */
        target[n] = '\0';
        if (n < 10 || strcmp(target + n - 10, " (deleted)") != 0)
            ckpt_fail("%s -> \"%s\", want a \"(deleted)\" target", link, target);
    }
}

static void check_data(void)
{
    static unsigned char got[SIZE + 16];
    off_t off = lseek(fd, 0, SEEK_CUR);
    if (off != OFFSET)
        ckpt_fail("offset %lld, want %d", (long long)off, OFFSET);
    ssize_t n = pread(fd, got, sizeof got, 0);
    if (n != (ssize_t)SIZE)
        ckpt_fail("pread gave %zd bytes, want %u", n, SIZE);
    for (ssize_t i = 0; i < n; i++) {
        if (got[i] != pattern((size_t)i)) {
            ckpt_fail("byte %zd is %#x, want %#x", i, got[i], pattern((size_t)i));
            break;
        }
    }
    unsigned char four[4];
    if (off >= 0 && off + 4 <= (off_t)SIZE && (read(fd, four, 4) != 4 ||
        memcmp(four, got + off, 4) != 0 || lseek(fd, 0, SEEK_CUR) != off + 4))
        ckpt_fail("read at the current offset does not give the bytes there");
}

static void apply_break(int brk)
{
    if (brk == 1) {
        ckpt_note_break("byte 777777 changed");
        unsigned char c = (unsigned char)(pattern(777777) ^ 0x40);
        if (pwrite(fd, &c, 1, 777777) != 1)
            ckpt_fail("selftest pwrite failed");
    } else if (brk == 2) {
        ckpt_note_break("offset moved");
        lseek(fd, 4096, SEEK_SET);
    } else if (brk == 3) {
        ckpt_note_break("file truncated");
        if (ftruncate(fd, SIZE / 2) != 0)
            ckpt_fail("selftest ftruncate failed");
    } else if (brk == 4) {
        ckpt_note_break("mode changed");
        fchmod(fd, 0600);
    }
}

int main(int argc, char **argv)
{
    ckpt_init("deletedfile");
    setup(argc > 1 ? argv[1] : ".");
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    check_stat();
    check_data();
    ckpt_finish();
}
