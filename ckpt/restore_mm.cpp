// ProcessRebuild (restore_mm.hpp).
#include "ckpt/restore_mm.hpp"

#include <fcntl.h>
#include <linux/prctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>

#include "ckpt/proc_read.hpp"

// A syscall instruction in envrun's own text: the stubs are forks of envrun, so it is
// at the same address in them (the first remote syscalls run there).
extern "C" void envrun_ckpt_syscall_gadget();
asm(".pushsection .text.envrun_ckpt_syscall_gadget,\"ax\",@progbits\n"
    ".globl envrun_ckpt_syscall_gadget\n"
    ".type envrun_ckpt_syscall_gadget,@function\n"
    "envrun_ckpt_syscall_gadget:\n\tsyscall\n\tret\n"
    ".popsection\n");

namespace envrun::ckpt {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kTaskTop = 0x7ffffffff000ull;
constexpr int kMapFixedNoReplace = 0x100000;
constexpr int kRseqUnregister = 1;
constexpr int kPtraceGetRseqConfiguration = 0x420f;

struct PrctlMmMap {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end, env_start,
      env_end;
  uint64_t auxv;
  uint32_t auxv_size, exe_fd;
};

struct Range {
  uint64_t start, end;
};

bool overlaps(uint64_t s, uint64_t e, const std::vector<Range>& used) {
  for (const auto& r : used)
    if (s < r.end && r.start < e) return true;
  return false;
}

// A free place of `size` bytes below the usual mmap area, not in `used`.
Result<uint64_t> free_range(uint64_t size, const std::vector<Range>& used) {
  for (uint64_t c = 0x200000000ull; c + size < kTaskTop; c += 0x100000000ull)
    if (!overlaps(c, c + size, used)) return c;
  return Error::make(ErrorKind::System, "restore: no free address range for the restorer");
}

const Vma* find(const std::vector<Vma>& v, Vma::Kind k) {
  for (const auto& m : v)
    if (m.kind == k) return &m;
  return nullptr;
}

}  // namespace

infect::ThreadRegs resumable(const infect::ThreadRegs& dumped) {
  infect::ThreadRegs r = dumped;
  long orig = long(r.gp.orig_rax), ax = long(r.gp.rax);
  if (orig >= 0) {
    if (ax == -512 || ax == -513 || ax == -514) {  // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND
      r.gp.rax = r.gp.orig_rax;
      r.gp.rip -= 2;
    } else if (ax == -516) {  // ERESTART_RESTARTBLOCK: the restart block is gone
      r.gp.rax = uint64_t(-long(EINTR));
    }
  }
  r.gp.orig_rax = uint64_t(-1);
  return r;
}

Result<long> ProcessRebuild::call(long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                                  uint64_t a6) {
  return main_->syscall(nr, a1, a2, a3, a4, a5, a6);
}

Result<uint64_t> ProcessRebuild::put(size_t off, const void* data, size_t size) {
  uint64_t at = base_ + kPage + off;
  ENVRUN_CHECK(infect::write_mem(pp_.host_pid, at, std::span<const uint8_t>(static_cast<const uint8_t*>(data), size)));
  return at;
}

Result<void> ProcessRebuild::move_vdso(const std::vector<Vma>& stub) {
  const Vma::Kind kinds[] = {Vma::Kind::Vvar, Vma::Kind::VvarVclock, Vma::Kind::Vdso};
  std::vector<Range> used{{base_, base_ + 2 * kPage}};
  for (const auto& v : pp_.core.vmas) used.push_back({v.start, v.end});
  for (const auto& v : stub) used.push_back({v.start, v.end});
  uint64_t lo = UINT64_MAX, hi = 0;
  for (auto k : kinds)
    if (auto s = find(stub, k)) lo = std::min(lo, s->start), hi = std::max(hi, s->end);
  if (hi == 0) return ok();
  uint64_t tmp = ENVRUN_TRY(free_range(hi - lo, used));
  for (int pass = 0; pass < 2; ++pass) {
    for (auto k : kinds) {
      const Vma* s = find(stub, k);
      const Vma* t = find(pp_.core.vmas, k);
      if (!s) continue;
      uint64_t from = pass == 0 ? s->start : tmp + (s->start - lo);
      if (!t) {  // the image has none (older kernel): ours must go
        if (pass == 0) (void)ENVRUN_TRY(call(SYS_munmap, s->start, s->size()));
        continue;
      }
      if (t->size() != s->size())
        return Error::make(ErrorKind::System, std::string("restore: the image's ") +
                                                  (k == Vma::Kind::Vdso ? "[vdso]" : "[vvar]") +
                                                  " differs in size from this kernel's (an image of another kernel)");
      uint64_t to = pass == 0 ? tmp + (s->start - lo) : t->start;
      long r = ENVRUN_TRY(call(SYS_mremap, from, s->size(), s->size(), MREMAP_MAYMOVE | MREMAP_FIXED, to));
      if (r < 0) return Error::sys("restore: pid " + std::to_string(pp_.core.pid) + ": move the vdso", int(-r));
    }
  }
  return ok();
}

Result<void> ProcessRebuild::map_one(const Vma& v) {
  if (v.kind == Vma::Kind::Vdso || v.kind == Vma::Kind::Vvar || v.kind == Vma::Kind::VvarVclock ||
      v.kind == Vma::Kind::Vsyscall)
    return ok();
  long fd = -1;
  int flags = kMapFixedNoReplace;
  std::string what = "mapping " + std::to_string(v.start);
  if (v.kind == Vma::Kind::Anon) {
    flags |= MAP_PRIVATE | MAP_ANONYMOUS | (v.grows_down ? MAP_GROWSDOWN : 0);
  } else if (v.kind == Vma::Kind::SharedAnon) {
    fd = plan_.shm_fds.at(v.ino).get();
    flags |= MAP_SHARED;
  } else {
    std::string path = plan_.inside(v.path);
    what = path;
    if (path.size() > 10 && path.compare(path.size() - 10, 10, " (deleted)") == 0)
      return Error::make(ErrorKind::System, "restore: pid " + std::to_string(pp_.core.pid) + ": " + path +
                                                ": mappings of deleted files cannot be restored yet");
    uint64_t at = ENVRUN_TRY(put(0, path.c_str(), path.size() + 1));
    int oflags = (v.shared && (v.prot & PROT_WRITE)) ? O_RDWR : O_RDONLY;
    fd = ENVRUN_TRY(call(SYS_openat, uint64_t(AT_FDCWD), at, uint64_t(oflags | O_CLOEXEC)));
    if (fd < 0) return Error::sys("restore: pid " + std::to_string(pp_.core.pid) + ": open " + path, int(-fd));
    flags |= v.shared ? MAP_SHARED : MAP_PRIVATE;
  }
  long r = ENVRUN_TRY(call(SYS_mmap, v.start, v.size(), uint64_t(v.prot), uint64_t(flags), uint64_t(fd), v.offset));
  if (v.kind == Vma::Kind::File) (void)ENVRUN_TRY(call(SYS_close, uint64_t(fd)));
  if (r != long(v.start))
    return Error::sys("restore: pid " + std::to_string(pp_.core.pid) + ": mmap " + what + " at 0x" +
                          [&] { char b[32]; std::snprintf(b, sizeof b, "%llx", (unsigned long long)v.start); return std::string(b); }(),
                      r < 0 ? int(-r) : EEXIST);
  return ok();
}

Result<void> ProcessRebuild::map_layout() {
  pid_t pid = pp_.host_pid;
  auto stub = ENVRUN_TRY(proc::read_maps(pid));
  main_ = std::make_unique<infect::Remote>(
      ENVRUN_TRY(infect::Remote::open(pp_.host_tids.at(0), reinterpret_cast<uint64_t>(&envrun_ckpt_syscall_gadget))));
  // glibc registered rseq for the stub's main thread inside envrun's memory: drop it
  // before that memory goes, or the kernel would fault writing to it.
  struct {
    uint64_t ptr;
    uint32_t size, sig, flags, pad;
  } rs{};
  if (::ptrace(static_cast<__ptrace_request>(kPtraceGetRseqConfiguration), pp_.host_tids[0], sizeof rs, &rs) ==
          long(sizeof rs) && rs.ptr) {
    long r = ENVRUN_TRY(call(SYS_rseq, rs.ptr, rs.size, uint64_t(kRseqUnregister), rs.sig));
    if (r < 0) return Error::sys("restore: unregister the stub's rseq", int(-r));
  }
  std::vector<Range> used;
  for (const auto& v : pp_.core.vmas) used.push_back({v.start, v.end});
  for (const auto& v : stub) used.push_back({v.start, v.end});
  base_ = ENVRUN_TRY(free_range(2 * kPage, used));
  long r = ENVRUN_TRY(call(SYS_mmap, base_, 2 * kPage, PROT_READ | PROT_WRITE | PROT_EXEC,
                           uint64_t(MAP_PRIVATE | MAP_ANONYMOUS | kMapFixedNoReplace), uint64_t(-1), 0));
  if (r != long(base_)) return Error::sys("restore: map the restorer page", r < 0 ? int(-r) : EEXIST);
  const uint8_t insn[4] = {0x0f, 0x05, 0xeb, 0xfe};  // syscall; jmp .
  ENVRUN_CHECK(infect::write_mem(pid, base_, insn));
  ENVRUN_CHECK(main_->use_syscall_at(base_));
  // Everything of the stub goes but our page and the kernel's vdso/vvar.
  std::vector<Range> keep{{base_, base_ + 2 * kPage}};
  for (const auto& v : stub)
    if (v.kind == Vma::Kind::Vdso || v.kind == Vma::Kind::Vvar || v.kind == Vma::Kind::VvarVclock ||
        v.kind == Vma::Kind::Vsyscall)
      keep.push_back({v.start, v.end});
  std::sort(keep.begin(), keep.end(), [](const Range& a, const Range& b) { return a.start < b.start; });
  uint64_t at = 0;
  for (const auto& k : keep) {
    if (k.start >= kTaskTop) break;
    if (k.start > at) (void)ENVRUN_TRY(call(SYS_munmap, at, k.start - at));
    at = std::max(at, k.end);
  }
  if (at < kTaskTop) (void)ENVRUN_TRY(call(SYS_munmap, at, kTaskTop - at));
  ENVRUN_CHECK(move_vdso(stub));
  for (const auto& v : pp_.core.vmas) ENVRUN_CHECK(map_one(v));
  for (const auto& [ino, fd] : plan_.shm_fds) (void)ENVRUN_TRY(call(SYS_close, uint64_t(fd.get())));
  return ok();
}

Result<void> ProcessRebuild::set_mm() {
  const ProcessCore& p = pp_.core;
  long exe_fd = -1;
  std::string exe = plan_.inside(p.exe);
  if (!exe.empty() && exe.find(" (deleted)") == std::string::npos) {
    uint64_t at = ENVRUN_TRY(put(512, exe.c_str(), exe.size() + 1));
    exe_fd = ENVRUN_TRY(call(SYS_openat, uint64_t(AT_FDCWD), at, uint64_t(O_RDONLY | O_CLOEXEC)));
  }
  uint64_t auxv = ENVRUN_TRY(put(1024, p.auxv.data(), p.auxv.size() * 8));
  PrctlMmMap m{p.start_code, p.end_code, p.start_data, p.end_data, p.start_brk, p.brk, p.start_stack, p.arg_start,
               p.arg_end, p.env_start, p.env_end, auxv, uint32_t(p.auxv.size() * 8), uint32_t(exe_fd < 0 ? -1 : exe_fd)};
  uint64_t at = ENVRUN_TRY(put(0, &m, sizeof m));
  long r = ENVRUN_TRY(call(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, at, sizeof m, 0));
  if (exe_fd >= 0) (void)ENVRUN_TRY(call(SYS_close, uint64_t(exe_fd)));
  if (r < 0) return Error::sys("restore: pid " + std::to_string(p.pid) + ": prctl(PR_SET_MM_MAP)", int(-r));
  return ok();
}

Result<void> ProcessRebuild::thread_state(infect::Remote& r, const ThreadCore& t) {
  (void)ENVRUN_TRY(r.syscall(SYS_set_tid_address, t.clear_tid));
  if (t.robust_list) (void)ENVRUN_TRY(r.syscall(SYS_set_robust_list, t.robust_list, t.robust_len));
  if (t.rseq) {
    long rc = ENVRUN_TRY(r.syscall(SYS_rseq, t.rseq, t.rseq_len, 0, t.rseq_sig));
    if (rc < 0) return Error::sys("restore: tid " + std::to_string(t.tid) + ": rseq", int(-rc));
  }
  if (!(t.altstack_flags & SS_DISABLE) && t.altstack_size) {
    uint64_t ss[3] = {t.altstack_sp, uint64_t(t.altstack_flags & ~SS_ONSTACK), t.altstack_size};
    uint64_t at = base_ + kPage + 2048 + 64 * 0;
    ENVRUN_CHECK(infect::write_mem(pp_.host_pid, at, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(ss), sizeof ss)));
    long rc = ENVRUN_TRY(r.syscall(SYS_sigaltstack, at, 0));
    if (rc < 0) return Error::sys("restore: tid " + std::to_string(t.tid) + ": sigaltstack", int(-rc));
  }
  return ok();
}

// Credentials of one thread, in the order privileges allow: the bounding set shrinks
// while we still hold CAP_SETPCAP, ids change with the permitted set kept, then the
// capability sets, ambient capabilities and no_new_privs as dumped.
Result<void> ProcessRebuild::creds(infect::Remote& r) {
  const ProcessCore& p = pp_.core;
  if (p.uids.size() < 3 || p.gids.size() < 3) return ok();
  auto check = [&](long rc, const char* what) -> Result<void> {
    if (rc < 0) return Error::sys("restore: pid " + std::to_string(p.pid) + ": " + what, int(-rc));
    return ok();
  };
  for (int cap = 0; cap < 64; ++cap)
    if (!(p.cap_bnd & (1ull << cap))) {
      long rc = ENVRUN_TRY(r.syscall(SYS_prctl, PR_CAPBSET_DROP, uint64_t(cap)));
      if (rc == -EINVAL) break;  // past the kernel's last capability
      ENVRUN_CHECK(check(rc, "PR_CAPBSET_DROP"));
    }
  uint64_t at = base_ + kPage + 3072;
  std::vector<uint32_t> groups = p.groups;
  if (!groups.empty())
    ENVRUN_CHECK(infect::write_mem(pp_.host_pid, at, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(groups.data()), groups.size() * 4)));
  long rc = ENVRUN_TRY(r.syscall(SYS_setgroups, groups.size(), at));
  if (rc != -EPERM) ENVRUN_CHECK(check(rc, "setgroups"));
  ENVRUN_CHECK(check(ENVRUN_TRY(r.syscall(SYS_setresgid, p.gids[0], p.gids[1], p.gids[2])), "setresgid"));
  ENVRUN_CHECK(check(ENVRUN_TRY(r.syscall(SYS_prctl, PR_SET_KEEPCAPS, 1)), "PR_SET_KEEPCAPS"));
  ENVRUN_CHECK(check(ENVRUN_TRY(r.syscall(SYS_setresuid, p.uids[0], p.uids[1], p.uids[2])), "setresuid"));
  ENVRUN_CHECK(check(ENVRUN_TRY(r.syscall(SYS_prctl, PR_SET_KEEPCAPS, 0)), "PR_SET_KEEPCAPS"));
  struct {
    uint32_t version;
    int pid;
    uint32_t data[6];  // {effective, permitted, inheritable} x 2 (low, high 32 bits)
  } capset{0x20080522, 0,
           {uint32_t(p.cap_eff), uint32_t(p.cap_prm), uint32_t(p.cap_inh), uint32_t(p.cap_eff >> 32),
            uint32_t(p.cap_prm >> 32), uint32_t(p.cap_inh >> 32)}};
  ENVRUN_CHECK(infect::write_mem(pp_.host_pid, at, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&capset), sizeof capset)));
  ENVRUN_CHECK(check(ENVRUN_TRY(r.syscall(SYS_capset, at, at + 8)), "capset"));
  ENVRUN_CHECK(check(ENVRUN_TRY(r.syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)), "ambient"));
  for (int cap = 0; cap < 64; ++cap)
    if (p.cap_amb & (1ull << cap))
      ENVRUN_CHECK(check(ENVRUN_TRY(r.syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, uint64_t(cap), 0, 0)), "ambient raise"));
  if (p.no_new_privs) ENVRUN_CHECK(check(ENVRUN_TRY(r.syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)), "no_new_privs"));
  return ok();
}

Result<void> ProcessRebuild::seccomp(infect::Remote& r, const ThreadCore& t, bool tsync) {
  constexpr unsigned kSetModeFilter = 1, kFlagTsync = 1;  // SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC
  for (const auto& prog : t.seccomp) {
    size_t bytes = prog.size() * 8 + 16;
    long area = ENVRUN_TRY(r.syscall(SYS_mmap, 0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, uint64_t(-1), 0));
    if (area < 0) return Error::sys("restore: pid " + std::to_string(pp_.core.pid) + ": room for a seccomp filter", int(-area));
    struct {
      uint16_t len;
      uint16_t pad[3];
      uint64_t filter;
    } fprog{uint16_t(prog.size()), {}, uint64_t(area) + 16};
    ENVRUN_CHECK(infect::write_mem(pp_.host_pid, uint64_t(area), std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&fprog), 16)));
    ENVRUN_CHECK(infect::write_mem(pp_.host_pid, uint64_t(area) + 16,
                                   std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(prog.data()), prog.size() * 8)));
    long rc = ENVRUN_TRY(r.syscall(SYS_seccomp, kSetModeFilter, tsync ? kFlagTsync : 0, uint64_t(area)));
    (void)ENVRUN_TRY(r.syscall(SYS_munmap, uint64_t(area), bytes));
    if (rc != 0)
      return Error::sys("restore: tid " + std::to_string(t.tid) + ": seccomp filter of " + std::to_string(prog.size()) + " instructions",
                        rc < 0 ? int(-rc) : EBUSY);
  }
  return ok();
}

Result<void> ProcessRebuild::finish() {
  ENVRUN_CHECK(set_mm());
  const auto& threads = pp_.core.threads;
  // Seccomp filters go in last, after the credentials, when the process has no_new_privs
  // (then it may install them unprivileged). Without it they must go in while the thread
  // is still root with every capability: before the credentials, whose syscalls the
  // filters then judge. Threads that share one list get it once, from the main thread.
  bool same = std::all_of(threads.begin(), threads.end(), [&](const ThreadCore& t) { return t.seccomp == threads[0].seccomp; });
  bool late = pp_.core.no_new_privs;
  auto one = [&](infect::Remote& r, size_t i) -> Result<void> {
    ENVRUN_CHECK(thread_state(r, threads[i]));
    bool mine = !same || i == 0;
    if (mine && !late) ENVRUN_CHECK(seccomp(r, threads[i], same && threads.size() > 1));
    ENVRUN_CHECK(creds(r));
    if (mine && late) ENVRUN_CHECK(seccomp(r, threads[i], same && threads.size() > 1));
    return ok();
  };
  for (size_t i = 1; i < threads.size(); ++i) {
    auto r = ENVRUN_TRY(infect::Remote::open(pp_.host_tids[i], base_));
    ENVRUN_CHECK(one(r, i));
    r.release();
  }
  ENVRUN_CHECK(one(*main_, 0));
  // The last remote syscall removes the page it runs from: it stops at its exit, and
  // the registers below send the thread elsewhere before it executes anything more.
  (void)ENVRUN_TRY(call(SYS_munmap, base_, 2 * kPage));
  main_->release();
  for (size_t i = 0; i < threads.size(); ++i) {
    ENVRUN_CHECK(infect::set_regs(pp_.host_tids[i], resumable(pp_.regs[i])));
    ENVRUN_CHECK(infect::set_sigmask(pp_.host_tids[i], threads[i].sigmask));
  }
  return ok();
}

}  // namespace envrun::ckpt
