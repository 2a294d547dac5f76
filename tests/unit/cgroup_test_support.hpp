// Shared by the cgroup manager tests (test_cgroup.cpp, test_cgroup_plan.cpp): guards that
// destroy test cgroups and reap children, and helpers that read the host's hierarchies.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>

#include "kernel/fs.hpp"
#include "kernel/process.hpp"
#include "runtime/cgroup.hpp"

using namespace envrun;
using namespace envrun::runtime;

namespace envrun_cgroup_test {

inline std::string test_path(const std::string& leaf) { return "/envrun-test-" + std::to_string(::getpid()) + "/" + leaf; }

// Kills what is left in the cgroup (thawing first: frozen tasks cannot die), then destroys it.
struct CgroupGuard {
  std::unique_ptr<CgroupManager> m;
  explicit CgroupGuard(std::unique_ptr<CgroupManager> mgr) : m(std::move(mgr)) {}
  ~CgroupGuard() {
    if (auto f = m->is_frozen(); f && *f) (void)m->thaw();
    if (auto p = m->pids())
      for (pid_t pid : *p) ::kill(pid, SIGKILL);
    (void)m->destroy();
  }
  CgroupManager* operator->() { return m.get(); }
};

// A forked child that waits for a byte on `go` before running `body`; killed and reaped at scope end.
struct Child {
  pid_t pid = -1;
  int go_w = -1;
  template <class F>
  explicit Child(F body) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(p[1]);
      char c;
      if (::read(p[0], &c, 1) != 1) ::_exit(100);
      ::_exit(body());
    }
    ::close(p[0]);
    go_w = p[1];
  }
  void go() {
    REQUIRE(::write(go_w, "g", 1) == 1);
    ::close(go_w);
    go_w = -1;
  }
  int wait() {  // raw wait status
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    pid = -1;
    return st;
  }
  ~Child() {
    if (go_w >= 0) ::close(go_w);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

inline CgroupMounts host_mounts() {
  auto m = CgroupMounts::detect();
  REQUIRE(m.ok());
  return *m;
}

inline std::string knob(const CgroupMounts& m, const std::string& ctrl, const std::string& path, const std::string& file) {
  auto r = fs::read_file(fs::join(fs::join(m.v1.at(ctrl), path), file));
  REQUIRE(r.ok());
  std::string s = *r;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Where the container's directory would be in the v1 hierarchy of `ctrl`.
inline std::string v1_dir(const CgroupMounts& m, const std::string& ctrl, const std::string& path) {
  return fs::join(m.v1.at(ctrl), path);
}

// The v1 controllers (of this host) whose hierarchy holds the container's directory.
inline std::set<std::string> joined(const CgroupMounts& m, const std::string& path) {
  std::set<std::string> out;
  for (const auto& [ctrl, mount] : m.v1)
    if (fs::is_dir(fs::join(mount, path))) out.insert(ctrl);
  return out;
}

// The OCI default spec's device rules: deny everything, allow the usual character devices.
inline oci::Resources default_resources() {
  oci::Resources r;
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
  for (auto [maj, min] : {std::pair{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}})
    r.devices.push_back({true, "c", maj, min, "rwm"});
  r.devices.push_back({true, "c", 136, std::nullopt, "rwm"});
  return r;
}

// Whether /proc/<pid>/cgroup puts the process at `path` in the hierarchy of `ctrl` ("": unified).
inline bool in_cgroup(pid_t pid, const std::string& ctrl, const std::string& path) {
  auto text = fs::read_file("/proc/" + std::to_string(pid) + "/cgroup");
  REQUIRE(text.ok());
  return text->find(":" + ctrl + ":" + path + "\n") != std::string::npos;
}

// A shared counter for a child to bump (fork keeps the mapping).
inline std::atomic<uint64_t>* shared_counter() {
  auto* c = static_cast<std::atomic<uint64_t>*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(c != MAP_FAILED);
  c->store(0);
  return c;
}

// Remove the /envrun-test-<pid> level wherever it is left empty (managers made with the path
// only do not know they created it).
inline void remove_test_root(const CgroupMounts& m) {
  std::string root = "/envrun-test-" + std::to_string(::getpid());
  for (const auto& [ctrl, mount] : m.v1) ::rmdir(fs::join(mount, root).c_str());
  ::rmdir(fs::join(m.unified, root).c_str());
}

// Poll (bounded) until the child's counter reaches `target`.
inline bool subprocess_wait_until_counter(std::atomic<uint64_t>* counter, uint64_t target) {
  for (int i = 0; i < 5000; ++i) {
    if (counter->load() >= target) return true;
    ::usleep(1000);
  }
  return false;
}

// A child body that sleeps until killed.
inline int sleep_forever() {
  ::pause();
  return 0;
}

// In the child: open `path` read-only; 0 on success, else errno.
inline int try_open(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

}  // namespace envrun_cgroup_test
