/* intercept-files-probe: calls the shell tools do not make, one per sub-command, printing
 * what the application sees (tests/integration/t_intercept_files.sh checks the output).
 *   getdents DIR        names from raw getdents64 on open(DIR, O_DIRECTORY), sorted by the caller
 *   fdlink PATH         readlink("/proc/self/fd/N") of open(PATH)
 *   at DIR NAME         openat(open(DIR), NAME) and print the first line of the file
 *   closeall            closefrom(3) and close_range(3, ~0) then stat("/") through the rules
 *   errno PATH          stat(PATH) with errno preset to 1234 on success; prints errno after
 *   mkstemp TEMPLATE    mkstemp, prints the name it filled in
 *   renameat2 OLD NEW   renameat2(RENAME_NOREPLACE)
 *   fork PATH           a forked child reads PATH (first line) and exits 0/1
 *   cwdat DIR NAME      chdir(DIR); fchdir(open(".")); getcwd; stat(NAME)
 *   scandir DIR         names from scandir(3) (glibc's own opendir/readdir inside), one per line */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int first_line(int fd) {
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n < 0) { perror("read"); return 1; }
  buf[n] = 0;
  char* nl = strchr(buf, '\n');
  if (nl) *nl = 0;
  printf("%s\n", buf);
  fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* cmd = argv[1];
  if (!strcmp(cmd, "scandir") && argc == 3) {
    struct dirent** list;
    int n = scandir(argv[2], &list, NULL, alphasort);
    if (n < 0) {
      perror("scandir");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      puts(list[i]->d_name);
      free(list[i]);
    }
    free(list);
    return 0;
  }
  if (!strcmp(cmd, "getdents") && argc == 3) {
    int fd = open(argv[2], O_RDONLY | O_DIRECTORY);
    if (fd < 0) { perror(argv[2]); return 1; }
    char buf[4096];
    for (;;) {
      ssize_t n = getdents64(fd, buf, sizeof buf);
      if (n < 0) { perror("getdents64"); return 1; }
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        struct dirent64* d = (struct dirent64*)(buf + off);
        if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..")) printf("%s\n", d->d_name);
        off += d->d_reclen;
      }
    }
    return 0;
  }
  if (!strcmp(cmd, "fdlink") && argc == 3) {
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) { perror(argv[2]); return 1; }
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) { perror(link); return 1; }
    target[n] = 0;
    printf("%s\n", target);
    return 0;
  }
  if (!strcmp(cmd, "at") && argc == 4) {
    int dfd = open(argv[2], O_RDONLY | O_DIRECTORY);
    if (dfd < 0) { perror(argv[2]); return 1; }
    int fd = openat(dfd, argv[3], O_RDONLY);
    if (fd < 0) { perror(argv[3]); return 1; }
    return first_line(fd);
  }
  if (!strcmp(cmd, "closeall") && argc == 3) {
    closefrom(3);
    close_range(3, ~0u, 0);
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) { perror(argv[2]); return 1; }
    return first_line(fd);
  }
  if (!strcmp(cmd, "errno") && argc == 3) {
    struct stat st;
    errno = 1234;
    int r = stat(argv[2], &st);
    printf("%d %d\n", r, errno);
    return 0;
  }
  if (!strcmp(cmd, "mkstemp") && argc == 3) {
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s", argv[2]);
    int fd = mkstemp(tmpl);
    if (fd < 0) { perror("mkstemp"); return 1; }
    if (write(fd, "tmp\n", 4) != 4) return 1;
    printf("%s\n", tmpl);
    return 0;
  }
  if (!strcmp(cmd, "renameat2") && argc == 4) {
    if (renameat2(AT_FDCWD, argv[2], AT_FDCWD, argv[3], RENAME_NOREPLACE) != 0) { perror("renameat2"); return 1; }
    return 0;
  }
  if (!strcmp(cmd, "fork") && argc == 3) {
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(argv[2], O_RDONLY);
      if (fd < 0) { perror(argv[2]); _exit(1); }
      _exit(first_line(fd));
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
  }
  if (!strcmp(cmd, "cwdat") && argc == 4) {
    if (chdir(argv[2]) != 0) { perror(argv[2]); return 1; }
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    if (chdir("/") != 0 || fchdir(dfd) != 0) { perror("fchdir"); return 1; }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) { perror("getcwd"); return 1; }
    struct stat st;
    printf("%s %s\n", cwd, stat(argv[3], &st) == 0 ? "found" : strerror(errno));
    return 0;
  }
  fprintf(stderr, "files-probe: bad command\n");
  return 2;
}
