/* deadcwd: makes DIR/ckpt_deadcwd.<pid> (DIR = argv[1], default "."), chdir()s into it and
 * removes it: the cwd is a deleted directory.
 * At SIGTERM: getcwd() fails with ENOENT (or gives a "(deleted)"/unreachable form);
 * /proc/self/cwd, when /proc is there, ends in "(deleted)"; stat(".") is a directory with
 * nlink 0; creating a file relative to the cwd fails with ENOENT (the cwd is still the removed
 * directory, not its parent or /); the directory's path does not exist.
 * CKPT_SELFTEST_BREAK: 1 chdir to DIR (a live directory), 2 the directory re-created at its
 * path and entered. */
#include "ckpt_common.h"
#include <limits.h>
#include <sys/stat.h>

static char dead_path[PATH_MAX + 64];
static char base[PATH_MAX];

static void setup(const char *dir)
{
    if (!realpath(dir, base))
        ckpt_die("realpath %s: %s", dir, strerror(errno));
    snprintf(dead_path, sizeof dead_path, "%s/ckpt_deadcwd.%d", base, (int)getpid());
    if (mkdir(dead_path, 0755) != 0 || chdir(dead_path) != 0)
        ckpt_die("mkdir/chdir %s: %s", dead_path, strerror(errno));
    if (rmdir(dead_path) != 0)
        ckpt_die("rmdir %s: %s", dead_path, strerror(errno));
}

static void check_getcwd(void)
{
    char buf[PATH_MAX];
    errno = 0;
    const char *r = getcwd(buf, sizeof buf);
    if (r) {
        size_t n = strlen(r);
        int deleted = n >= 10 && strcmp(r + n - 10, " (deleted)") == 0;
        if (!deleted && r[0] == '/')
            ckpt_fail("getcwd() = \"%s\": the cwd is a live directory", r);
    } else if (errno != ENOENT) {
        ckpt_fail("getcwd() failed with %s, want ENOENT", strerror(errno));
    }
    ssize_t n = readlink("/proc/self/cwd", buf, sizeof buf - 1);
    if (n >= 0) {
        buf[n] = '\0';
        if (n < 10 || strcmp(buf + n - 10, " (deleted)") != 0)
            ckpt_fail("/proc/self/cwd -> \"%s\", want a \"(deleted)\" target", buf);
    }
}

static void check_dir(void)
{
    struct stat st;
    if (stat(".", &st) != 0)
        ckpt_fail("stat(\".\"): %s", strerror(errno));
    else if (!S_ISDIR(st.st_mode) || st.st_nlink != 0)
        ckpt_fail("stat(\".\"): mode %#o nlink %lu, want a directory with nlink 0",
                  (unsigned)st.st_mode, (unsigned long)st.st_nlink);
    const char *probe = "ckpt_deadcwd_probe";
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ckpt_fail("a file could be created in the cwd (it is not the removed directory)");
        close(fd);
        unlink(probe);
    } else if (errno != ENOENT) {
        ckpt_fail("creating a file in the cwd failed with %s, want ENOENT", strerror(errno));
    }
    if (access(dead_path, F_OK) == 0)
        ckpt_fail("%s exists again", dead_path);
}

static void apply_break(int brk)
{
    if (brk == 1) {
        ckpt_note_break("chdir to the live parent directory");
        if (chdir(base) != 0)
            ckpt_fail("selftest chdir failed");
    } else if (brk == 2) {
        ckpt_note_break("the directory re-created and entered");
        if (mkdir(dead_path, 0755) != 0 || chdir(dead_path) != 0)
            ckpt_fail("selftest mkdir/chdir failed");
    }
}

int main(int argc, char **argv)
{
    ckpt_init("deadcwd");
    setup(argc > 1 ? argv[1] : ".");
    ckpt_ready();
    ckpt_wait_term();
    int brk = ckpt_break();
    apply_break(brk);
    check_getcwd();
    check_dir();
    if (brk == 2)
        rmdir(dead_path); /* leave nothing behind */
    ckpt_finish();
}
