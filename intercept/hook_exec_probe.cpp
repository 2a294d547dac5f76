// What a file about to be executed is: a dynamic ELF (the loader will preload us), a static
// one (no PT_INTERP: nothing preloads), a #! script, and whether the kernel will run it
// with other credentials (setuid/setgid: the loader then ignores LD_PRELOAD). Raw system
// calls only: the head of the file is read with one pread, the program headers with one more.
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "intercept/hook_exec.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt::exec {

namespace {

constexpr size_t kHead = 256;  // BINPRM_BUF_SIZE: what the kernel reads of a #! line

long pread_all(int fd, void* buf, size_t n, long off) {
  return sys::raw(SYS_pread64, fd, sys::L(buf), long(n), off);
}

// The kernel's #! parsing (fs/binfmt_script.c): interpreter up to blank, then one optional
// argument with surrounding blanks trimmed.
int parse_shebang(const char* head, size_t n, Probe& out) {
  size_t end = 2;
  while (end < n && head[end] != '\n') ++end;
  size_t i = 2;
  while (i < end && (head[i] == ' ' || head[i] == '\t')) ++i;
  size_t j = i;
  while (j < end && head[j] != ' ' && head[j] != '\t' && head[j] != '\0') ++j;
  if (j == i) return -ENOEXEC;
  if (j == end && end == n && n == kHead) return -ENOEXEC;  // interpreter cut off by the buffer
  size_t a = j;
  while (a < end && (head[a] == ' ' || head[a] == '\t')) ++a;
  size_t b = end;
  while (b > a && (head[b - 1] == ' ' || head[b - 1] == '\t' || head[b - 1] == '\r' || head[b - 1] == '\0')) --b;
  memcpy(out.line, head + i, j - i);
  out.line[j - i] = '\0';
  out.interp = out.line;
  if (b > a) {
    memcpy(out.line + (j - i) + 1, head + a, b - a);
    out.line[(j - i) + 1 + (b - a)] = '\0';
    out.arg = out.line + (j - i) + 1;
  }
  out.kind = Probe::Script;
  return 0;
}

template <class Ehdr, class Phdr>
Probe::Kind elf_kind(int fd, const unsigned char* head, size_t n) {
  if (n < sizeof(Ehdr)) return Probe::Unknown;
  Ehdr eh;
  memcpy(&eh, head, sizeof eh);
  if ((eh.e_type != ET_EXEC && eh.e_type != ET_DYN) || eh.e_phentsize != sizeof(Phdr) || eh.e_phnum == 0)
    return Probe::Unknown;
  Phdr ph[64];
  for (size_t done = 0; done < eh.e_phnum;) {
    size_t k = eh.e_phnum - done < 64 ? eh.e_phnum - done : 64;
    long got = pread_all(fd, ph, k * sizeof(Phdr), long(eh.e_phoff + done * sizeof(Phdr)));
    if (got != long(k * sizeof(Phdr))) return Probe::Unknown;
    for (size_t i = 0; i < k; ++i) {
      if (ph[i].p_type == PT_INTERP) return Probe::ElfDynamic;
    }
    done += k;
  }
  // No PT_INTERP: static (or static-pie). The dynamic loader itself has none either but
  // honours LD_PRELOAD when run as a program; probe() tells it apart by its file name.
  return Probe::ElfStatic;
}

bool looks_like_loader(const char* path) {
  const char* base = strrchr(path, '/');
  base = base ? base + 1 : path;
  return strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld64.so", 7) == 0 || strncmp(base, "ld.so", 5) == 0 ||
         strncmp(base, "ld-musl", 7) == 0;
}

// Credentials change at exec (AT_SECURE): set-id bit, an owner other than ours, and a
// mount that honours set-id bits.
void set_id_bits(int fd, const struct stat& st, Probe& out) {
  bool suid = (st.st_mode & S_ISUID) && st.st_uid != getuid();
  bool sgid = (st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP) && st.st_gid != getgid();
  if (!suid && !sgid) return;
  struct statfs fs;
  if (sys::raw(SYS_fstatfs, fd, sys::L(&fs)) == 0 && (fs.f_flags & ST_NOSUID)) return;
  out.setuid = suid;
  out.setgid = sgid;
}

}  // namespace

int probe_fd(int fd, Probe& out) {
  struct stat st;
  if (sys::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  set_id_bits(fd, st, out);
  unsigned char head[kHead];
  long n = pread_all(fd, head, sizeof head, 0);
  if (n < 4) return 0;
  if (head[0] == '#' && head[1] == '!') return parse_shebang(reinterpret_cast<const char*>(head), size_t(n), out);
  if (memcmp(head, ELFMAG, SELFMAG) != 0) return 0;
  if (head[EI_CLASS] == ELFCLASS64) out.kind = elf_kind<Elf64_Ehdr, Elf64_Phdr>(fd, head, size_t(n));
  else if (head[EI_CLASS] == ELFCLASS32) out.kind = elf_kind<Elf32_Ehdr, Elf32_Phdr>(fd, head, size_t(n));
  return 0;
}

int probe(int dirfd, const char* path, Probe& out) {
  int fd = sys::openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;  // execute-only or missing: the kernel decides
  int rc = probe_fd(fd, out);
  sys::close(fd);
  if (out.kind == Probe::ElfStatic && looks_like_loader(path)) out.kind = Probe::ElfDynamic;
  return rc;
}

}  // namespace envrun::icpt::exec
