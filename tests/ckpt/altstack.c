/* altstack: sigaltstack on a known buffer (a static array, size 65024) and a SIGUSR1 handler
 * (SA_ONSTACK) that records the address of one of its locals and whether sigaltstack()
 * reports SS_ONSTACK inside it; the handler is exercised once before READY.
 * At SIGTERM: sigaltstack() reports the same address, size and flags 0; SIGUSR1 still has
 * SA_ONSTACK; a raised SIGUSR1 runs once, on the alternate stack (its local lies inside the
 * buffer and SS_ONSTACK is reported in the handler).
 * CKPT_SELFTEST_BREAK: 1 the alternate stack disabled (SS_DISABLE), 2 another buffer installed,
 * 3 SIGUSR1 re-installed without SA_ONSTACK. */
#include "ckpt_common.h"

#define STACK_SIZE (65536 - 512)

static char alt_stack[65536] __attribute__((aligned(64)));
static char other_stack[65536] __attribute__((aligned(64)));
static volatile sig_atomic_t handled;
static volatile uintptr_t local_addr;
static volatile int flags_in_handler;

static void on_usr1(int sig)
{
    volatile char local = (char)sig;
    stack_t cur;
    local_addr = (uintptr_t)&local;
    flags_in_handler = sigaltstack(NULL, &cur) == 0 ? cur.ss_flags : -1;
    handled++;
}

static void install(int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
}

static int on_alt_stack(void)
{
    return local_addr >= (uintptr_t)alt_stack && local_addr < (uintptr_t)alt_stack + STACK_SIZE &&
           (flags_in_handler & SS_ONSTACK);
}

static void setup(void)
{
    stack_t ss = {.ss_sp = alt_stack, .ss_flags = 0, .ss_size = STACK_SIZE};
    if (sigaltstack(&ss, NULL) != 0)
        ckpt_die("sigaltstack: %s", strerror(errno));
    install(SA_ONSTACK);
    raise(SIGUSR1);
    if (handled != 1 || !on_alt_stack())
        ckpt_die("the handler did not run on the alternate stack");
}

static void check(void)
{
    stack_t ss;
    struct sigaction sa;
    if (sigaltstack(NULL, &ss) != 0) {
        ckpt_fail("sigaltstack query: %s", strerror(errno));
    } else {
        if (ss.ss_sp != alt_stack || ss.ss_size != STACK_SIZE)
            ckpt_fail("sigaltstack reports %p size %zu, want %p size %d", ss.ss_sp, ss.ss_size,
                      (void *)alt_stack, STACK_SIZE);
        if (ss.ss_flags != 0)
            ckpt_fail("sigaltstack flags %#x, want 0%s", ss.ss_flags,
                      (ss.ss_flags & SS_DISABLE) ? " (disabled)" : "");
    }
    if (sigaction(SIGUSR1, NULL, &sa) != 0 || !(sa.sa_flags & SA_ONSTACK) || sa.sa_handler != on_usr1)
        ckpt_fail("SIGUSR1 action lost SA_ONSTACK or its handler (flags %#x)", sa.sa_flags);
    handled = 0;
    local_addr = 0;
    raise(SIGUSR1);
    if (handled != 1)
        ckpt_fail("SIGUSR1 handler ran %d times, want 1", (int)handled);
    else if (!on_alt_stack())
        ckpt_fail("handler ran at %#lx (ss_flags %#x), not on the alternate stack %p-%p",
                  (unsigned long)local_addr, flags_in_handler, (void *)alt_stack,
                  (void *)(alt_stack + STACK_SIZE));
}

static void apply_break(int brk)
{
    if (brk == 1) {
        stack_t ss = {.ss_flags = SS_DISABLE};
        ckpt_note_break("alternate stack disabled");
        sigaltstack(&ss, NULL);
    } else if (brk == 2) {
        stack_t ss = {.ss_sp = other_stack, .ss_flags = 0, .ss_size = STACK_SIZE};
        ckpt_note_break("another alternate stack installed");
        sigaltstack(&ss, NULL);
    } else if (brk == 3) {
        ckpt_note_break("SIGUSR1 without SA_ONSTACK");
        install(0);
    }
}

int main(void)
{
    ckpt_init("altstack");
    setup();
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    check();
    ckpt_finish();
}
