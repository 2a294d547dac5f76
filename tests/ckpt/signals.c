/* signals: SIGUSR1 handler (SA_SIGINFO|SA_RESTART, sa_mask {SIGHUP, SIGQUIT, SIGWINCH});
 * SIGUSR2 and SIGRTMIN+1 blocked, SIGUSR2 raised twice (thread-pending, one instance),
 * SIGRTMIN+1 sigqueue'd to the process three times with values 1, 2, 3 (process-pending,
 * queued).
 * At SIGTERM: the blocked mask is as set; sigpending has SIGUSR2 and SIGRTMIN+1; sigaction of
 * SIGUSR1 gives the same handler, flags and mask; after unblocking, SIGUSR2 arrived once and
 * SIGRTMIN+1 three times in order with values 1, 2, 3 (SI_QUEUE from our pid); a raised
 * SIGUSR1 runs its handler with the sa_mask signals blocked.
 * CKPT_SELFTEST_BREAK: 1 SIGUSR2 unblocked early (delivered, no longer pending), 2 one
 * SIGRTMIN+1 consumed by sigtimedwait, 3 SIGUSR1 re-installed without SA_RESTART,
 * 4 SIGUSR1 re-installed without SIGQUIT in its mask. */
#include "ckpt_common.h"

#define FLAG_BITS (SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_NODEFER | SA_RESETHAND)

static volatile sig_atomic_t usr1_count, usr1_mask_ok, usr2_count, rt_count, rt_bad;
static volatile int rt_values[8];
static const int usr1_mask_sigs[] = {SIGHUP, SIGQUIT, SIGWINCH};

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si; (void)uc;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    usr1_mask_ok = sigismember(&cur, SIGHUP) && sigismember(&cur, SIGQUIT) &&
                   sigismember(&cur, SIGWINCH);
    usr1_count++;
}

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si; (void)uc;
    usr2_count++;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    if (si->si_code != SI_QUEUE || si->si_pid != getpid())
        rt_bad++;
    if (rt_count < 8)
        rt_values[rt_count] = si->si_value.sival_int;
    rt_count++;
}

static void install_usr1(int flags, int with_quit)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof usr1_mask_sigs / sizeof *usr1_mask_sigs; i++)
        if (with_quit || usr1_mask_sigs[i] != SIGQUIT)
            sigaddset(&sa.sa_mask, usr1_mask_sigs[i]);
    sigaction(SIGUSR1, &sa, NULL);
}

static void blocked_set(sigset_t *s)
{
    sigemptyset(s);
    sigaddset(s, SIGUSR2);
    sigaddset(s, SIGRTMIN + 1);
}

static void setup(void)
{
    struct sigaction sa;
    sigset_t blk, pend;
    install_usr1(SA_SIGINFO | SA_RESTART, 1);
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_sigaction = on_rt;
    sigaction(SIGRTMIN + 1, &sa, NULL);
    blocked_set(&blk);
    sigprocmask(SIG_BLOCK, &blk, NULL);
    raise(SIGUSR2);
    raise(SIGUSR2);
    for (int v = 1; v <= 3; v++) {
        union sigval sv = {.sival_int = v};
        if (sigqueue(getpid(), SIGRTMIN + 1, sv) != 0)
            ckpt_die("sigqueue: %s", strerror(errno));
    }
    sigpending(&pend);
    if (!sigismember(&pend, SIGUSR2) || !sigismember(&pend, SIGRTMIN + 1) || usr2_count || rt_count)
        ckpt_die("signals are not pending as set up");
}

static void check_mask_and_pending(void)
{
    sigset_t cur, pend;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    if (!sigismember(&cur, SIGUSR2) || !sigismember(&cur, SIGRTMIN + 1))
        ckpt_fail("blocked mask lacks %s", sigismember(&cur, SIGUSR2) ? "SIGRTMIN+1" : "SIGUSR2");
    if (sigismember(&cur, SIGUSR1))
        ckpt_fail("SIGUSR1 is blocked");
    sigpending(&pend);
    if (!sigismember(&pend, SIGUSR2))
        ckpt_fail("SIGUSR2 not pending");
    if (!sigismember(&pend, SIGRTMIN + 1))
        ckpt_fail("SIGRTMIN+1 not pending");
}

static void check_usr1_action(void)
{
    struct sigaction sa;
    if (sigaction(SIGUSR1, NULL, &sa) != 0) {
        ckpt_fail("sigaction(SIGUSR1) query: %s", strerror(errno));
        return;
    }
    if (sa.sa_sigaction != on_usr1)
        ckpt_fail("SIGUSR1 handler %p, want %p", (void *)sa.sa_sigaction, (void *)on_usr1);
    if ((sa.sa_flags & FLAG_BITS) != (SA_SIGINFO | SA_RESTART))
        ckpt_fail("SIGUSR1 flags %#x, want SA_SIGINFO|SA_RESTART (%#x)", sa.sa_flags & FLAG_BITS,
                  SA_SIGINFO | SA_RESTART);
    for (int s = 1; s < 32; s++) {
        int want = s == SIGHUP || s == SIGQUIT || s == SIGWINCH;
        if (sigismember(&sa.sa_mask, s) != want)
            ckpt_fail("SIGUSR1 sa_mask: signal %d is %s", s, want ? "missing" : "extra");
    }
}

static void check_delivery(void)
{
    sigset_t blk;
    blocked_set(&blk);
    sigprocmask(SIG_UNBLOCK, &blk, NULL);
    if (usr2_count != 1)
        ckpt_fail("SIGUSR2 delivered %d times after unblocking, want 1", (int)usr2_count);
    if (rt_count != 3)
        ckpt_fail("SIGRTMIN+1 delivered %d times after unblocking, want 3", (int)rt_count);
    for (int i = 0; i < rt_count && i < 3; i++)
        if (rt_values[i] != i + 1)
            ckpt_fail("SIGRTMIN+1 #%d carried value %d, want %d", i + 1, rt_values[i], i + 1);
    if (rt_bad)
        ckpt_fail("%d SIGRTMIN+1 had a wrong si_code or si_pid", (int)rt_bad);
    raise(SIGUSR1);
    if (usr1_count != 1)
        ckpt_fail("SIGUSR1 handler ran %d times for one raise", (int)usr1_count);
    else if (!usr1_mask_ok)
        ckpt_fail("SIGUSR1 handler ran without its sa_mask blocked");
}

static void apply_break(int brk)
{
    if (brk == 1) {
        sigset_t s;
        ckpt_note_break("SIGUSR2 unblocked early");
        sigemptyset(&s);
        sigaddset(&s, SIGUSR2);
        sigprocmask(SIG_UNBLOCK, &s, NULL);
        sigprocmask(SIG_BLOCK, &s, NULL);
    } else if (brk == 2) {
        sigset_t s;
        struct timespec zero = {0, 0};
        ckpt_note_break("one SIGRTMIN+1 consumed");
        sigemptyset(&s);
        sigaddset(&s, SIGRTMIN + 1);
        sigtimedwait(&s, NULL, &zero);
    } else if (brk == 3) {
        ckpt_note_break("SIGUSR1 without SA_RESTART");
        install_usr1(SA_SIGINFO, 1);
    } else if (brk == 4) {
        ckpt_note_break("SIGUSR1 without SIGQUIT in its mask");
        install_usr1(SA_SIGINFO | SA_RESTART, 0);
    }
}

int main(void)
{
    ckpt_init("signals");
    setup();
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    check_mask_and_pending();
    check_usr1_action();
    check_delivery();
    ckpt_finish();
}
