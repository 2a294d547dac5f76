/* seccomp: two seccomp filters installed before a second thread starts (so both threads
 * share them): the first makes getpriority fail with errno 77, the second sysinfo with
 * errno 78. Without the argument "root" the program sets no_new_privs first (unprivileged
 * install); with it, it relies on CAP_SYS_ADMIN and must not have no_new_privs.
 * At SIGTERM: /proc/self/status says "Seccomp: 2" and "Seccomp_filters: 2", both threads
 * get errno 77 from getpriority and 78 from sysinfo, getpid still works, and
 * no_new_privs is as set up.
 * CKPT_SELFTEST_BREAK: 1 a third filter (getpid fails with errno 79). */
#include "ckpt_common.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static int want_nnp = 1;
static volatile int thread_result = -1;
static volatile int thread_go;

static void filter_errno(int nr, int err)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        ckpt_die("seccomp filter for syscall %d: %s", nr, strerror(errno));
}

/* 0 when getpriority gives errno 77, sysinfo 78 and getpid works; else a bit mask. */
static int probe(void)
{
    int bad = 0;
    errno = 0;
    if (syscall(SYS_getpriority, 0, 0) != -1 || errno != 77)
        bad |= 1;
    errno = 0;
    char buf[256];
    if (syscall(SYS_sysinfo, buf) != -1 || errno != 78)
        bad |= 2;
    if (syscall(SYS_getpid) <= 0)
        bad |= 4;
    return bad;
}

static void *thread_main(void *arg)
{
    (void)arg;
    while (!thread_go)
        usleep(10000);
    thread_result = probe();
    return NULL;
}

static long status_field(const char *name)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strstr(buf, name);
    return p ? strtol(p + strlen(name), NULL, 10) : -1;
}

int main(int argc, char **argv)
{
    pthread_t th;
    ckpt_init("seccomp");
    if (argc > 1 && strcmp(argv[1], "root") == 0)
        want_nnp = 0;
    if (want_nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        ckpt_die("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    if (!want_nnp && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0)
        ckpt_die("\"root\" mode but no_new_privs is already set");
    filter_errno(SYS_getpriority, 77);
    filter_errno(SYS_sysinfo, 78);
    if (pthread_create(&th, NULL, thread_main, NULL) != 0)
        ckpt_die("pthread_create");
    if (probe() != 0)
        ckpt_die("filters do not act before READY (probe %d)", probe());
    ckpt_ready();
    ckpt_wait_term();
    if (ckpt_break() == 1) {
        ckpt_note_break("a third filter");
        filter_errno(SYS_getpid, 79);
    }
    if (status_field("Seccomp:") != 2)
        ckpt_fail("Seccomp: %ld, want 2", status_field("Seccomp:"));
    if (status_field("Seccomp_filters:") != 2)
        ckpt_fail("Seccomp_filters: %ld, want 2", status_field("Seccomp_filters:"));
    int m = probe();
    if (m)
        ckpt_fail("main thread probe %d (1 getpriority, 2 sysinfo, 4 getpid)", m);
    thread_go = 1;
    pthread_join(th, NULL);
    if (thread_result != 0)
        ckpt_fail("second thread probe %d", thread_result);
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != want_nnp)
        ckpt_fail("no_new_privs %d, want %d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), want_nnp);
    ckpt_finish();
}
