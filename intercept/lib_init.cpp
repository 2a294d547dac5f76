// Library start-up: map the DB and the control page named by the environment, resolve the
// interceptor chain, count the process. Runs from the constructor, or from the first hook
// that fires before it (another library's constructor); re-entry from the same thread
// (a hook called by something init calls) sees the boot page and passes through.
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "intercept/chain.hpp"
#include "intercept/ckpt_gate.hpp"
#include "intercept/ckpt_thread.hpp"
#include "intercept/cwd.hpp"
#include "intercept/lib_state.hpp"
#include "intercept/meter.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt {

constinit ictl::ControlPage g_boot_page{};
constinit LibState g_state{};
constinit std::atomic<int> g_init_state{0};

namespace {

__thread int t_in_init __attribute__((tls_model("initial-exec")));

void copy_path(char* dst, const char* src) {
  size_t n = strnlen(src, PATH_MAX - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

// Map the file read-only; returns the mapping (size in *size) or nullptr with a reason.
const void* map_file(const char* path, int prot, int flags, size_t* size, const char** why) {
  int fd = sys::openat(AT_FDCWD, path, (prot & PROT_WRITE ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    *why = strerror(-fd);
    return nullptr;
  }
  struct stat st;
  int r = sys::fstat(fd, &st);
  if (r < 0 || st.st_size <= 0) {
    sys::close(fd);
    *why = r < 0 ? strerror(-r) : "empty file";
    return nullptr;
  }
  *size = size_t(st.st_size);
  void* p = mmap(nullptr, *size, prot, flags, fd, 0);
  sys::close(fd);
  if (p == MAP_FAILED) {
    *why = "cannot map it";
    return nullptr;
  }
  return p;
}

void load_db() {
  const char* path = getenv("ENVRUN_INTERCEPT_DB");
  if (path == nullptr || path[0] == '\0') return;  // not configured: pass everything through
  copy_path(g_state.db_path, path);
  size_t size = 0;
  const char* why = nullptr;
  const void* data = map_file(path, PROT_READ, MAP_PRIVATE, &size, &why);
  if (data != nullptr) {
    why = g_state.db.open(data, size);
    if (why != nullptr) munmap(const_cast<void*>(data), size);
  }
  if (why != nullptr) {
    sys::say("envrun-intercept: ", path, ": ", why);
    sys::say("\n");
    return;
  }
  g_state.db_ok = true;
}

uint64_t initial_mask() {
  uint64_t m = 0;
  for (uint32_t i = 0; i < g_state.db.interceptor_count(); ++i)
    if (g_state.db.interceptors()[i].enabled) m |= uint64_t(1) << i;
  return m;
}

ictl::ControlPage* private_page() {
  void* p = mmap(nullptr, sizeof(ictl::ControlPage), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return &g_boot_page;
  auto* page = static_cast<ictl::ControlPage*>(p);  // zero-filled: valid atomics
  memcpy(page->magic, ictl::kMagic, sizeof page->magic);
  page->version = ictl::kVersion;
  page->size = sizeof(ictl::ControlPage);
  page->enabled.store(g_state.db_ok ? initial_mask() : 0, std::memory_order_release);
  return page;
}

void load_ctl() {
  const char* path = getenv("ENVRUN_INTERCEPT_CTL");
  if (path != nullptr && path[0] != '\0') {
    copy_path(g_state.ctl_path, path);
    size_t size = 0;
    const char* why = nullptr;
    void* p = const_cast<void*>(map_file(path, PROT_READ | PROT_WRITE, MAP_SHARED, &size, &why));
    if (p != nullptr) {
      auto* page = static_cast<ictl::ControlPage*>(p);
      if (size < sizeof(ictl::ControlPage)) why = "truncated control page";
      else if (memcmp(page->magic, ictl::kMagic, sizeof ictl::kMagic) != 0) why = "not a control page (bad magic)";
      else if (page->version != ictl::kVersion) why = "unsupported control page version";
      if (why == nullptr) {
        g_state.ctl = page;
        g_state.ctl_shared = true;
        return;
      }
      munmap(p, size);
    }
    sys::say("envrun-intercept: ", path, ": ", why);
    sys::say(" (counting into a private page)\n");
  }
  g_state.ctl = private_page();
}

Kind kind_of(const char* name) {
  if (strcmp(name, "meter") == 0) return Kind::Meter;
  if (strcmp(name, "redirect") == 0) return Kind::Redirect;
  if (strcmp(name, "net") == 0) return Kind::Net;
  if (strcmp(name, "barrier") == 0) return Kind::Barrier;
  return Kind::Unknown;
}

void load_chain() {
  if (!g_state.db_ok) return;
  g_state.chain_len = g_state.db.interceptor_count();
  for (uint32_t i = 0; i < g_state.chain_len; ++i) {
    Kind k = kind_of(g_state.db.str(g_state.db.interceptors()[i].name));
    g_state.chain[i] = k;
    int* idx = k == Kind::Meter ? &g_state.idx_meter : k == Kind::Redirect ? &g_state.idx_redirect
             : k == Kind::Net ? &g_state.idx_net : k == Kind::Barrier ? &g_state.idx_barrier : nullptr;
    if (idx != nullptr && *idx < 0) *idx = int(i);
  }
}

void find_self() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&init_slow), &info) == 0 || info.dli_fname == nullptr) return;
  const char* f = info.dli_fname;
  if (f[0] == '/') {
    copy_path(g_state.self_path, f);
    return;
  }
  char cwd[PATH_MAX];
  long n = sys::getcwd(cwd, sizeof cwd);
  if (n <= 0 || size_t(n) + strlen(f) + 1 >= PATH_MAX) return copy_path(g_state.self_path, f);
  size_t k = strlen(cwd);
  memcpy(g_state.self_path, cwd, k);
  g_state.self_path[k] = '/';
  copy_path(g_state.self_path + k + 1, f);
}


void do_init() {
  load_db();
  load_ctl();
  load_chain();
  build_plans();
  find_self();
  cwd_init();
  meter::batch_init();
  meter::process_loaded();
  ckpt::gate_init();
}

// The checkpoint thread starts here, not in do_init: init may run from a hook called by
// another library's constructor.
__attribute__((constructor(101))) void lib_constructor() {
  ensure_init();
  ckpt::start_thread();
}

}  // namespace

void init_slow() {
  if (t_in_init) return;
  int expected = 0;
  if (g_init_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    t_in_init = 1;
    do_init();
    t_in_init = 0;
    g_init_state.store(2, std::memory_order_release);
    return;
  }
  while (g_init_state.load(std::memory_order_acquire) != 2) sys::raw(SYS_sched_yield);
}

void* real_symbol(const char* name) { return dlsym(RTLD_NEXT, name); }

void* real_versioned_symbol(const char* name) {
  static const char* const versions[] = {"GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.0"};
  for (const char* v : versions)
    if (void* p = dlvsym(RTLD_NEXT, name, v)) return p;
  return dlsym(RTLD_NEXT, name);
}

}  // namespace envrun::icpt
