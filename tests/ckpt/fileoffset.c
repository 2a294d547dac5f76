/* fileoffset: writes FILE (argv[1], default ./ckpt_fileoffset.dat) with 8192 known bytes;
 * fd1 (O_RDWR) is left at offset 4096+123, fd3 = dup(fd1) shares that offset, fd2 is
 * O_WRONLY|O_APPEND at offset 0.
 * At SIGTERM: fd flags (O_RDWR, O_APPEND), fd1/fd3 offsets 4219, fd1 still the inode at FILE;
 * writes 16 bytes through fd1 (lands at 4219, fd3's offset follows: shared description) and
 * 16 bytes through fd2 (lands at the end: append still appends); then the whole file is read
 * back through a fresh open and compared byte by byte (size 8208).
 * CKPT_SELFTEST_BREAK: 1 fd1 lseek'd to 0, 2 O_APPEND cleared on fd2, 3 fd3 replaced by a
 * separate open at the same offset (no longer shared), 4 one byte of the file changed. */
#include "ckpt_common.h"
#include <sys/stat.h>

#define INITIAL 8192
#define OFFSET (4096 + 123)
#define MID "<middle-write!!>"
#define TAIL "<appended-bytes>"
#define PIECE 16

static int fd1, fd2, fd3;
static const char *path;

static char pattern(size_t i) { return (char)('a' + (i * 31 + i / 97) % 26); }

static void setup(void)
{
    char buf[INITIAL];
    for (size_t i = 0; i < INITIAL; i++)
        buf[i] = pattern(i);
    fd1 = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd1 < 0)
        ckpt_die("open %s: %s", path, strerror(errno));
    if (write(fd1, buf, INITIAL) != INITIAL)
        ckpt_die("write %s: %s", path, strerror(errno));
    if (lseek(fd1, OFFSET, SEEK_SET) != OFFSET)
        ckpt_die("lseek %s: %s", path, strerror(errno));
    fd2 = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    fd3 = dup(fd1);
    if (fd2 < 0 || fd3 < 0)
        ckpt_die("second open/dup of %s: %s", path, strerror(errno));
}

static void check_fds(void)
{
    struct stat a, b;
    int f1 = fcntl(fd1, F_GETFL), f2 = fcntl(fd2, F_GETFL);
    if (f1 < 0 || (f1 & O_ACCMODE) != O_RDWR || (f1 & O_APPEND))
        ckpt_fail("fd1 flags %#x, want O_RDWR without O_APPEND", f1);
    if (f2 < 0 || (f2 & O_ACCMODE) != O_WRONLY || !(f2 & O_APPEND))
        ckpt_fail("fd2 flags %#x, want O_WRONLY|O_APPEND", f2);
    if (fstat(fd1, &a) != 0 || stat(path, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
        ckpt_fail("fd1 is not the file at %s any more", path);
    off_t o1 = lseek(fd1, 0, SEEK_CUR), o3 = lseek(fd3, 0, SEEK_CUR);
    if (o1 != OFFSET)
        ckpt_fail("fd1 offset %lld, want %d", (long long)o1, OFFSET);
    if (o3 != OFFSET)
        ckpt_fail("fd3 (dup of fd1) offset %lld, want %d", (long long)o3, OFFSET);
}

static void write_more(void)
{
    if (write(fd1, MID, PIECE) != PIECE)
        ckpt_fail("write through fd1: %s", strerror(errno));
    off_t o3 = lseek(fd3, 0, SEEK_CUR);
    if (o3 != OFFSET + PIECE)
        ckpt_fail("fd3 offset %lld after a write through fd1, want %d (offset not shared)",
                  (long long)o3, OFFSET + PIECE);
    if (write(fd2, TAIL, PIECE) != PIECE)
        ckpt_fail("write through fd2: %s", strerror(errno));
    off_t o2 = lseek(fd2, 0, SEEK_CUR);
    if (o2 != INITIAL + PIECE)
        ckpt_fail("fd2 offset %lld after the append, want %d", (long long)o2, INITIAL + PIECE);
}

static void check_content(void)
{
    char want[INITIAL + PIECE], got[INITIAL + PIECE + 64];
    for (size_t i = 0; i < INITIAL; i++)
        want[i] = pattern(i);
    memcpy(want + OFFSET, MID, PIECE);
    memcpy(want + INITIAL, TAIL, PIECE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ckpt_fail("reopen %s: %s", path, strerror(errno));
        return;
    }
    ssize_t n = pread(fd, got, sizeof got, 0);
    close(fd);
    if (n != (ssize_t)sizeof want)
        ckpt_fail("%s holds %zd bytes, want %zu", path, n, sizeof want);
    for (ssize_t i = 0; i < n && i < (ssize_t)sizeof want; i++) {
        if (got[i] != want[i]) {
            ckpt_fail("%s byte %zd is '%c', want '%c'", path, i, got[i], want[i]);
            break;
        }
    }
}

static void apply_break(int brk)
{
    if (brk == 1) {
        ckpt_note_break("fd1 lseek'd to 0");
        lseek(fd1, 0, SEEK_SET);
    } else if (brk == 2) {
        ckpt_note_break("O_APPEND cleared on fd2");
        fcntl(fd2, F_SETFL, fcntl(fd2, F_GETFL) & ~O_APPEND);
    } else if (brk == 3) {
        ckpt_note_break("fd3 replaced by a separate open");
        int fd = open(path, O_RDWR | O_CLOEXEC);
        lseek(fd, OFFSET, SEEK_SET);
        dup2(fd, fd3);
        close(fd);
    } else if (brk == 4) {
        ckpt_note_break("byte 100 of the file changed");
        if (pwrite(fd1, "#", 1, 100) != 1)
            ckpt_fail("selftest pwrite failed");
    }
}

int main(int argc, char **argv)
{
    ckpt_init("fileoffset");
    path = argc > 1 ? argv[1] : "ckpt_fileoffset.dat";
    setup();
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    check_fds();
    write_more();
    check_content();
    ckpt_finish();
}
