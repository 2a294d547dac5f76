/* forktree: the parent makes itself a session leader (setsid, when it can) and forks 3
 * children: child 1 exits 42 at once and is left a zombie (never reaped before SIGTERM);
 * children 2 and 3 loop, each with a request pipe and a reply pipe to the parent; child 3
 * lives in its own process group (setpgid).
 * At SIGTERM: waitpid(WNOHANG) of the zombie gives exit status 42; the parent's sid and pgid are
 * unchanged; getpgid/getsid of children 2/3 are as set up; each child answers twice over its
 * pipe with its pid, ppid (== the parent), pgrp, sid and a loop count that advances; the
 * children are told to exit and are reaped with status 0.
 * CKPT_SELFTEST_BREAK: 1 the zombie reaped early, 2 child 3 moved back into the parent's
 * process group, 3 child 2's request pipe closed (it exits and cannot answer). */
#include "ckpt_common.h"
#include <poll.h>
#include <sys/wait.h>

struct child {
    pid_t pid;
    int req_w; /* parent -> child */
    int rep_r; /* child -> parent */
    pid_t want_pgrp;
};

static struct child kids[2]; /* children 2 and 3 */
static pid_t zombie;
static pid_t my_sid, my_pgrp;

static void child_loop(int req_r, int rep_w)
{
    unsigned long long loops = 0;
    for (;;) {
        struct pollfd p = {req_r, POLLIN, 0};
        int n = poll(&p, 1, 10);
        loops++;
        if (n <= 0)
            continue;
        char c;
        if (read(req_r, &c, 1) != 1 || c == 'X')
            _exit(0);
        if (c == 'Q') {
            char buf[160];
            int len = snprintf(buf, sizeof buf, "%d %d %d %d %llu\n", (int)getpid(), (int)getppid(),
                               (int)getpgrp(), (int)getsid(0), loops);
            ckpt_write_all(rep_w, buf, (size_t)len);
        }
    }
}

static void spawn(struct child *k, int own_group, int close_fd1, int close_fd2)
{
    int req[2], rep[2];
    if (pipe(req) != 0 || pipe(rep) != 0)
        ckpt_die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        ckpt_die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (own_group)
            setpgid(0, 0);
        if (close_fd1 >= 0)
            close(close_fd1);
        if (close_fd2 >= 0)
            close(close_fd2);
        close(req[1]);
        close(rep[0]);
        child_loop(req[0], rep[1]);
    }
    if (own_group)
        setpgid(pid, pid);
    close(req[0]);
    close(rep[1]);
    k->pid = pid;
    k->req_w = req[1];
    k->rep_r = rep[0];
    k->want_pgrp = own_group ? pid : my_pgrp;
}

/* One 'Q' round trip; returns the reply's loop count, or -1 after recording a failure. */
static long long query(int no, struct child *k)
{
    char buf[160];
    size_t len = 0;
    if (write(k->req_w, "Q", 1) != 1) {
        ckpt_fail("child %d: request pipe write: %s", no, strerror(errno));
        return -1;
    }
    double deadline = ckpt_now() + 3.0;
    while (len < sizeof buf - 1 && (len == 0 || buf[len - 1] != '\n') && ckpt_now() < deadline) {
        struct pollfd p = {k->rep_r, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(k->rep_r, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    int pid, ppid, pgrp, sid;
    unsigned long long loops;
    if (sscanf(buf, "%d %d %d %d %llu", &pid, &ppid, &pgrp, &sid, &loops) != 5) {
        ckpt_fail("child %d did not answer over its pipe (got \"%s\")", no, buf);
        return -1;
    }
    if (pid != k->pid)
        ckpt_fail("child %d says pid %d, want %d", no, pid, (int)k->pid);
    if (ppid != getpid())
        ckpt_fail("child %d says ppid %d, want %d", no, ppid, (int)getpid());
    if (pgrp != k->want_pgrp)
        ckpt_fail("child %d says pgrp %d, want %d", no, pgrp, (int)k->want_pgrp);
    if (sid != my_sid)
        ckpt_fail("child %d says sid %d, want %d", no, sid, (int)my_sid);
    return (long long)loops;
}

static void check_ids(void)
{
    if (getsid(0) != my_sid)
        ckpt_fail("parent sid %d, want %d", (int)getsid(0), (int)my_sid);
    if (getpgrp() != my_pgrp)
        ckpt_fail("parent pgrp %d, want %d", (int)getpgrp(), (int)my_pgrp);
    for (int i = 0; i < 2; i++) {
        pid_t pg = getpgid(kids[i].pid), sid = getsid(kids[i].pid);
        if (pg != kids[i].want_pgrp)
            ckpt_fail("getpgid(child %d) = %d, want %d", i + 2, (int)pg, (int)kids[i].want_pgrp);
        if (sid != my_sid)
            ckpt_fail("getsid(child %d) = %d, want %d", i + 2, (int)sid, (int)my_sid);
    }
}

static void check_zombie(void)
{
    int st = 0;
    pid_t r = waitpid(zombie, &st, WNOHANG);
    if (r != zombie)
        ckpt_fail("zombie child 1 (pid %d) not waitable: waitpid returned %d (%s)", (int)zombie,
                  (int)r, r < 0 ? strerror(errno) : "still running");
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 42)
        ckpt_fail("zombie child 1 status %#x, want exit 42", st);
}

static void stop_children(void)
{
    for (int i = 0; i < 2; i++) {
        if (write(kids[i].req_w, "X", 1) != 1)
            kill(kids[i].pid, SIGKILL);
        int st = 0;
        pid_t r = 0;
        double deadline = ckpt_now() + 3.0;
        while ((r = waitpid(kids[i].pid, &st, WNOHANG)) == 0 && ckpt_now() < deadline)
            ckpt_sleep_ms(5);
        if (r == 0) {
            ckpt_fail("child %d did not exit when told", i + 2);
            kill(kids[i].pid, SIGKILL);
            waitpid(kids[i].pid, &st, 0);
        } else if (r != kids[i].pid) {
            ckpt_fail("child %d: waitpid: %s", i + 2, strerror(errno));
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            ckpt_fail("child %d ended with status %#x, want exit 0", i + 2, st);
        }
    }
}

static void apply_break(int brk)
{
    if (brk == 1) {
        ckpt_note_break("zombie reaped early");
        waitpid(zombie, NULL, 0);
    } else if (brk == 2) {
        ckpt_note_break("child 3 moved into the parent's process group");
        setpgid(kids[1].pid, my_pgrp);
    } else if (brk == 3) {
        ckpt_note_break("child 2's request pipe closed");
        close(kids[0].req_w);
        ckpt_sleep_ms(100);
    }
}

int main(void)
{
    ckpt_init("forktree");
    signal(SIGPIPE, SIG_IGN);
    setsid(); /* fails with EPERM when already a group leader: then the session is kept */
    my_sid = getsid(0);
    my_pgrp = getpgrp();
    zombie = fork();
    if (zombie < 0)
        ckpt_die("fork: %s", strerror(errno));
    if (zombie == 0)
        _exit(42);
    spawn(&kids[0], 0, -1, -1);
    spawn(&kids[1], 1, kids[0].req_w, kids[0].rep_r);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)zombie, &si, WEXITED | WNOWAIT) != 0 || si.si_status != 42)
        ckpt_die("child 1 did not become a zombie with status 42");
    if (query(2, &kids[0]) < 0 || query(3, &kids[1]) < 0 || ckpt_failed())
        ckpt_die("children do not answer as set up");
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    check_zombie();
    check_ids();
    for (int i = 0; i < 2; i++) {
        long long a = query(i + 2, &kids[i]);
        ckpt_sleep_ms(50);
        long long b = a < 0 ? -1 : query(i + 2, &kids[i]);
        if (a >= 0 && b >= 0 && b <= a)
            ckpt_fail("child %d loop count did not advance (%lld then %lld)", i + 2, a, b);
    }
    stop_children();
    ckpt_finish();
}
