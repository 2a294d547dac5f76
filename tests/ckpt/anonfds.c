/* anonfds: a periodic timerfd A (CLOCK_MONOTONIC, every 50 ms, O_NONBLOCK, never read before
 * SIGTERM, so expirations pile up), a one-shot timerfd B due in one hour, and a signalfd for
 * SIGUSR1|SIGUSR2 (both blocked) with SIGUSR2 pending.
 * At SIGTERM: A keeps its 50 ms interval and has expirations to read, then more 150 ms later;
 * B is still armed with between 3000 and 3600 s left and no interval; the signalfd is still
 * O_NONBLOCK, delivers SIGUSR2 (sent by this pid), then nothing.
 * With the argument "devfiles" (in a container, whose /dev and /dev/shm are its own tmpfs
 * mounts): /dev/null open for writing and /dev/shm/anonfds.dat (5000 known bytes, offset 1234)
 * too; at SIGTERM /dev/null is still the null device (1:3) and the shm file reads back its
 * bytes from offset 1234.
 * CKPT_SELFTEST_BREAK: 1 B disarmed, 2 the pending SIGUSR2 taken, 3 A's interval set to 70 ms,
 * 4 (devfiles) the shm file's offset moved. */
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "ckpt_common.h"
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static int ta, tb, sfd, devnull = -1, shm = -1;

static unsigned char shm_pat(size_t i) { return (unsigned char)(i * 29 + 11); }

static void setup_devfiles(void)
{
    unsigned char buf[5000];
    devnull = open("/dev/null", O_WRONLY);
    shm = open("/dev/shm/anonfds.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (devnull < 0 || shm < 0)
        ckpt_die("/dev/null or /dev/shm/anonfds.dat: %s", strerror(errno));
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = shm_pat(i);
    if (write(shm, buf, sizeof buf) != (ssize_t)sizeof buf || lseek(shm, 1234, SEEK_SET) != 1234)
        ckpt_die("write /dev/shm/anonfds.dat: %s", strerror(errno));
}

static void check_devfiles(void)
{
    struct stat st;
    unsigned char buf[5000];
    if (fstat(devnull, &st) != 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
        ckpt_fail("/dev/null fd is not the null device any more");
    else if (write(devnull, "x", 1) != 1)
        ckpt_fail("write to /dev/null: %s", strerror(errno));
    ssize_t n = read(shm, buf, sizeof buf);
    if (n != 5000 - 1234)
        ckpt_fail("shm file read %zd bytes from the offset, want %d", n, 5000 - 1234);
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] != shm_pat(1234 + (size_t)i)) {
            ckpt_fail("shm file byte %zd is %#x, want %#x", 1234 + i, buf[i], shm_pat(1234 + (size_t)i));
            break;
        }
}

static void setup(void)
{
    struct itimerspec a = {{0, 50000000}, {0, 50000000}}, b = {{0, 0}, {3600, 0}};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    ta = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    tb = timerfd_create(CLOCK_MONOTONIC, 0);
    sfd = signalfd(-1, &set, SFD_NONBLOCK);
    if (ta < 0 || tb < 0 || sfd < 0)
        ckpt_die("timerfd/signalfd: %s", strerror(errno));
    if (timerfd_settime(ta, 0, &a, NULL) != 0 || timerfd_settime(tb, 0, &b, NULL) != 0)
        ckpt_die("timerfd_settime: %s", strerror(errno));
    kill(getpid(), SIGUSR2);
}

static void check_a(void)
{
    struct itimerspec now;
    uint64_t n = 0;
    timerfd_gettime(ta, &now);
    if (now.it_interval.tv_sec != 0 || now.it_interval.tv_nsec != 50000000)
        ckpt_fail("timer A interval %ld.%09ld, want 0.050000000", (long)now.it_interval.tv_sec, now.it_interval.tv_nsec);
    if (read(ta, &n, sizeof n) != sizeof n || n < 1)
        ckpt_fail("timer A: no expirations to read (%s)", strerror(errno));
    usleep(150000);
    n = 0;
    if (read(ta, &n, sizeof n) != sizeof n || n < 1)
        ckpt_fail("timer A stopped: nothing 150 ms later (%s)", strerror(errno));
}

static void check_b(void)
{
    struct itimerspec now;
    timerfd_gettime(tb, &now);
    if (now.it_value.tv_sec < 3000 || now.it_value.tv_sec >= 3600 || now.it_interval.tv_sec || now.it_interval.tv_nsec)
        ckpt_fail("timer B has %ld s left, interval %ld, want 3000..3599 and 0", (long)now.it_value.tv_sec,
                  (long)now.it_interval.tv_sec);
}

static void check_signalfd(void)
{
    struct signalfd_siginfo si;
    if (!(fcntl(sfd, F_GETFL) & O_NONBLOCK))
        ckpt_fail("signalfd lost O_NONBLOCK");
    ssize_t n = read(sfd, &si, sizeof si);
    if (n != sizeof si)
        ckpt_fail("signalfd gave nothing (%s), want SIGUSR2", strerror(errno));
    else if (si.ssi_signo != SIGUSR2 || (pid_t)si.ssi_pid != ckpt_pid_at_ready)
        ckpt_fail("signalfd gave signal %u from %u, want SIGUSR2 from %d", si.ssi_signo, si.ssi_pid, (int)ckpt_pid_at_ready);
    if (read(sfd, &si, sizeof si) != -1 || errno != EAGAIN)
        ckpt_fail("signalfd has a second signal %u", si.ssi_signo);
}

int main(int argc, char **argv)
{
    int devfiles = argc > 1 && strcmp(argv[1], "devfiles") == 0;
    ckpt_init("anonfds");
    setup();
    if (devfiles)
        setup_devfiles();
    ckpt_ready();
    ckpt_wait_term();
    int brk = ckpt_break();
    if (brk == 1) {
        struct itimerspec off = {{0, 0}, {0, 0}};
        ckpt_note_break("timer B disarmed");
        timerfd_settime(tb, 0, &off, NULL);
    } else if (brk == 2) {
        sigset_t one;
        struct timespec zero = {0, 0};
        sigemptyset(&one);
        sigaddset(&one, SIGUSR2);
        ckpt_note_break("pending SIGUSR2 taken");
        sigtimedwait(&one, NULL, &zero);
    } else if (brk == 3) {
        struct itimerspec a = {{0, 70000000}, {0, 70000000}};
        ckpt_note_break("timer A interval 70 ms");
        timerfd_settime(ta, 0, &a, NULL);
    } else if (brk == 4 && devfiles) {
        ckpt_note_break("shm file offset moved");
        lseek(shm, 1000, SEEK_SET);
    }
    check_a();
    check_b();
    check_signalfd();
    if (devfiles)
        check_devfiles();
    ckpt_finish();
}
