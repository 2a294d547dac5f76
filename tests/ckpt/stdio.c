/* stdio ARG=FILE (default ./ckpt_stdio.txt) [ARG2=flushed]: opens FILE with fopen("w") and a
 * 64 KiB fully buffered stdio buffer (setvbuf _IOFBF) and fprintf's 120 known lines (about
 * 3.6 KiB) into it without any flush: the text stays in the process's memory. A worker thread
 * makes hooked calls without pause (stat of "/", pwrite of one byte to FILE.w) and counts them.
 * At SIGTERM: the worker's count still advances; ftell() is the length of the 120 lines; with
 * ARG2 "flushed" FILE must already hold exactly those lines on disk before the program's own
 * flush (someone flushed its stdio buffer: the interception library's checkpoint thread); then
 * 30 more lines are fprintf'ed, the stream is closed and FILE read back whole must be the 150
 * lines in order.
 * CKPT_SELFTEST_BREAK: 1 the stream's pending buffer is discarded (__fpurge: lines lost),
 * 2 FILE truncated on disk before the "flushed" check, 3 the worker thread stopped,
 * 4 one byte of FILE changed after the close. */
#include "ckpt_common.h"
#include <pthread.h>
#include <stdio_ext.h>
#include <sys/stat.h>

#define FIRST 120
#define MORE 30
#define BUFSZ 65536

static FILE *stream;
static const char *path;
static char sbuf[BUFSZ];
static volatile unsigned long worker_calls;
static volatile int worker_stop;

static int line_of(char *buf, size_t len, int i)
{
    return snprintf(buf, len, "stdio line %03d: the quick brown fox %d\n", i, i * 7919 % 1000);
}

static size_t text_of(char *buf, size_t len, int lines)
{
    size_t n = 0;
    for (int i = 0; i < lines && n < len; i++)
        n += (size_t)line_of(buf + n, len - n, i);
    return n;
}

static void *worker(void *arg)
{
    (void)arg;
    char wpath[4096];
    snprintf(wpath, sizeof wpath, "%s.w", path);
    int fd = open(wpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    struct stat st;
    while (!worker_stop) {
        stat("/", &st);
        if (fd >= 0 && pwrite(fd, "x", 1, 0) < 0)
            break;
        worker_calls = worker_calls + 1;
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void setup(pthread_t *th)
{
    stream = fopen(path, "w");
    if (!stream)
        ckpt_die("fopen %s: %s", path, strerror(errno));
    if (setvbuf(stream, sbuf, _IOFBF, sizeof sbuf) != 0)
        ckpt_die("setvbuf: %s", strerror(errno));
    char line[128];
    for (int i = 0; i < FIRST; i++) {
        line_of(line, sizeof line, i);
        if (fprintf(stream, "%s", line) < 0)
            ckpt_die("fprintf: %s", strerror(errno));
    }
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size != 0)
        ckpt_die("%s holds %lld bytes before READY: the buffer was flushed too early", path,
                 (long long)st.st_size);
    if (pthread_create(th, NULL, worker, NULL) != 0)
        ckpt_die("pthread_create failed");
}

static char *read_whole(size_t *len)
{
    static char buf[BUFSZ];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
    if (fd >= 0)
        close(fd);
    *len = n < 0 ? 0 : (size_t)n;
    return n < 0 ? NULL : buf;
}

static void check_worker(int brk)
{
    if (brk == 3)
        worker_stop = 1, ckpt_sleep_ms(50);
    unsigned long before = worker_calls;
    double until = ckpt_now() + 3.0;
    while (worker_calls == before && ckpt_now() < until)
        ckpt_sleep_ms(5);
    if (worker_calls == before)
        ckpt_fail("worker thread stuck at %lu hooked calls", before);
}

static void check_flushed(int brk)
{
    static char want[BUFSZ];
    size_t wlen = text_of(want, sizeof want, FIRST), len;
    if (brk == 2)
        (void)!truncate(path, 100);
    const char *got = read_whole(&len);
    if (!got)
        ckpt_fail("read %s: %s", path, strerror(errno));
    else if (len != wlen || memcmp(got, want, wlen) != 0)
        ckpt_fail("%s holds %zu bytes before the program's own flush, want the %zu buffered ones "
                  "(stdio buffer not flushed at the checkpoint)", path, len, wlen);
}

static void check_stream(int brk, int want_flushed)
{
    static char want[BUFSZ];
    size_t wlen = text_of(want, sizeof want, FIRST), len;
    if (brk == 1)
        __fpurge(stream);
    long pos = ftell(stream);
    if (pos != (long)wlen)
        ckpt_fail("ftell %ld, want %zu", pos, wlen);
    if (want_flushed)
        check_flushed(brk);
    char line[128];
    for (int i = FIRST; i < FIRST + MORE; i++) {
        line_of(line, sizeof line, i);
        fprintf(stream, "%s", line);
    }
    if (fclose(stream) != 0)
        ckpt_fail("fclose: %s", strerror(errno));
    if (brk == 4) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0 && pwrite(fd, "#", 1, 1000) != 1)
            ckpt_fail("selftest pwrite failed");
        if (fd >= 0)
            close(fd);
    }
    wlen = text_of(want, sizeof want, FIRST + MORE);
    const char *got = read_whole(&len);
    if (!got) {
        ckpt_fail("read %s back: %s", path, strerror(errno));
        return;
    }
    size_t i = 0;
    while (i < len && i < wlen && got[i] == want[i])
        i++;
    if (len != wlen || i != wlen)
        ckpt_fail("%s: %zu bytes, want %zu; first difference at byte %zu", path, len, wlen, i);
}

int main(int argc, char **argv)
{
    pthread_t th;
    ckpt_init("stdio");
    path = argc > 1 ? argv[1] : "./ckpt_stdio.txt";
    int want_flushed = argc > 2 && strcmp(argv[2], "flushed") == 0;
    setup(&th);
    ckpt_ready();
    ckpt_wait_term();
    int brk = ckpt_break();
    if (brk)
        ckpt_note_break(brk == 1 ? "buffer purged" : brk == 2 ? "file truncated" :
                        brk == 3 ? "worker stopped" : "file byte changed");
    check_worker(brk);
    check_stream(brk, want_flushed);
    worker_stop = 1;
    pthread_join(th, NULL);
    ckpt_finish();
}
