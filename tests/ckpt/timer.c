/* timer: setitimer(ITIMER_REAL) every 50 ms with a SIGALRM handler counting ticks, and a POSIX
 * timer (timer_create CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+2, sival 777) every 30 ms counting
 * too; both have ticked a few times at READY.
 * At SIGTERM: both counts go on increasing (at least 3 more ticks each within 3 s, so above
 * their READY values); getitimer still shows a 50 ms interval and an armed timer;
 * timer_gettime on the same timer id still shows a 30 ms interval, armed; every SIGRTMIN+2
 * carried SI_TIMER and value 777.
 * CKPT_SELFTEST_BREAK: 1 ITIMER_REAL disarmed, 2 the POSIX timer deleted, 3 the POSIX timer's
 * interval changed to 40 ms. */
#include "ckpt_common.h"
#include <sys/time.h>

#define ITIMER_US 50000
#define POSIX_NS 30000000L
#define SIGVAL 777

static volatile sig_atomic_t alrm_ticks, rt_ticks, rt_bad;
static long alrm_at_ready, rt_at_ready;
static timer_t timer;

static void on_alrm(int sig)
{
    (void)sig;
    alrm_ticks++;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    if (si->si_code != SI_TIMER || si->si_value.sival_int != SIGVAL)
        rt_bad++;
    rt_ticks++;
}

static void setup(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_alrm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN + 2, &sa, NULL);

    struct itimerval it = {{0, ITIMER_US}, {0, ITIMER_US}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0)
        ckpt_die("setitimer: %s", strerror(errno));
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN + 2;
    ev.sigev_value.sival_int = SIGVAL;
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0)
        ckpt_die("timer_create: %s", strerror(errno));
    struct itimerspec ts = {{0, POSIX_NS}, {0, POSIX_NS}};
    if (timer_settime(timer, 0, &ts, NULL) != 0)
        ckpt_die("timer_settime: %s", strerror(errno));
    while (alrm_ticks < 3 || rt_ticks < 3)
        ckpt_sleep_ms(5);
}

/* Both counts must go on increasing: 3 more ticks each within 3 s of SIGTERM (not "at SIGTERM":
 * a harness may send SIGTERM right after a restore, before the first tick). */
static void check_ticking(void)
{
    long a0 = alrm_ticks, r0 = rt_ticks;
    double deadline = ckpt_now() + 3.0;
    while ((alrm_ticks < a0 + 3 || rt_ticks < r0 + 3) && ckpt_now() < deadline)
        ckpt_sleep_ms(10);
    if (alrm_ticks < a0 + 3)
        ckpt_fail("SIGALRM (ITIMER_REAL) stopped: %ld ticks in 3 s after SIGTERM", alrm_ticks - a0);
    if (rt_ticks < r0 + 3)
        ckpt_fail("POSIX timer stopped: %ld ticks in 3 s after SIGTERM", rt_ticks - r0);
    if (alrm_ticks <= alrm_at_ready || rt_ticks <= rt_at_ready)
        ckpt_fail("tick counts %ld/%ld not above their READY values %ld/%ld", (long)alrm_ticks,
                  (long)rt_ticks, alrm_at_ready, rt_at_ready);
    if (rt_bad)
        ckpt_fail("%d SIGRTMIN+2 without SI_TIMER/value %d", (int)rt_bad, SIGVAL);
}

static void check_settings(void)
{
    struct itimerval it;
    struct itimerspec ts;
    if (getitimer(ITIMER_REAL, &it) != 0)
        ckpt_fail("getitimer: %s", strerror(errno));
    else if (it.it_interval.tv_sec != 0 || it.it_interval.tv_usec != ITIMER_US ||
             (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0))
        ckpt_fail("ITIMER_REAL interval %ld.%06ld s value %ld.%06ld s, want interval 0.%06d, armed",
                  (long)it.it_interval.tv_sec, (long)it.it_interval.tv_usec,
                  (long)it.it_value.tv_sec, (long)it.it_value.tv_usec, ITIMER_US);
    if (timer_gettime(timer, &ts) != 0)
        ckpt_fail("timer_gettime(timer %ld): %s (timer lost)", (long)(intptr_t)timer, strerror(errno));
    else if (ts.it_interval.tv_sec != 0 || ts.it_interval.tv_nsec != POSIX_NS ||
             (ts.it_value.tv_sec == 0 && ts.it_value.tv_nsec == 0))
        ckpt_fail("POSIX timer interval %ld.%09ld s value %ld.%09ld s, want interval 0.%09ld, armed",
                  (long)ts.it_interval.tv_sec, ts.it_interval.tv_nsec, (long)ts.it_value.tv_sec,
                  ts.it_value.tv_nsec, POSIX_NS);
}

static void apply_break(int brk)
{
    if (brk == 1) {
        struct itimerval off = {{0, 0}, {0, 0}};
        ckpt_note_break("ITIMER_REAL disarmed");
        setitimer(ITIMER_REAL, &off, NULL);
    } else if (brk == 2) {
        ckpt_note_break("POSIX timer deleted");
        timer_delete(timer);
    } else if (brk == 3) {
        struct itimerspec ts = {{0, 40000000L}, {0, 40000000L}};
        ckpt_note_break("POSIX timer interval changed to 40 ms");
        timer_settime(timer, 0, &ts, NULL);
    }
}

int main(void)
{
    ckpt_init("timer");
    setup();
    alrm_at_ready = alrm_ticks;
    rt_at_ready = rt_ticks;
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    check_ticking();
    check_settings();
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    ckpt_finish();
}
