// The in-process checkpoint handshake between the engine (ckpt/inproc.hpp) and the
// interception library's checkpoint thread, against a real process: tests/ckpt/stdio.c
// (fully buffered fprintf'ed text, a worker thread in hooked calls without pause) started
// with libenvrun-intercept.so preloaded, the default DB and a control page of our own.
// The worker's pwrite()s are counted by the meter into the page's kBytesWritten: while
// a checkpoint holds the barrier that count must not move, after the release it must.
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <climits>
#include <optional>
#include <string>
#include <thread>

#include "bundle/intercept_db.hpp"
#include "ckpt/inproc.hpp"
#include "intercept/control.h"
#include "kernel/fs.hpp"
#include "runtime/intercept_control.hpp"

using namespace envrun;
using namespace std::chrono_literals;

namespace {

std::string read_text(const std::string& path) {
  auto s = fs::read_file(path);
  return s ? *s : std::string();
}

// A temp dir with a compiled default DB and its control page, mapped here too.
struct Instance {
  std::string dir, db, ctl;
  ictl::ControlPage* page = nullptr;
  explicit Instance(bool barrier = true) {
    char tmpl[] = "/tmp/envrun-unit-inproc.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    db = dir + "/intercept.db";
    ctl = dir + "/intercept.ctl";
    auto model = bundle::default_intercept_db();
    if (!barrier) std::erase_if(model.interceptors, [](const auto& i) { return i.name == "barrier"; });
    auto bytes = bundle::write_intercept_db(model, db);
    REQUIRE(bytes);
    idb::DbView view;
    REQUIRE(view.open(bytes->data(), bytes->size()) == nullptr);
    REQUIRE(runtime::create_control_page(ctl, view));
    int fd = ::open(ctl.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    void* p = ::mmap(nullptr, sizeof(ictl::ControlPage), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    REQUIRE(p != MAP_FAILED);
    page = static_cast<ictl::ControlPage*>(p);
  }
  ~Instance() {
    ::munmap(page, sizeof(ictl::ControlPage));
    (void)fs::remove_tree(dir);
  }
  uint64_t counter(ictl::Counter c) const { return page->counters[c].load(); }
};

// ckpt_stdio FILE flushed, preloaded; READY read from its stdout; killed at scope end.
struct Program {
  pid_t pid = -1;
  int out = -1;
  std::string file;
  Program(const Instance& in, bool ckpt_thread = true) : file(in.dir + "/out.txt") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::dup2(fds[1], 1);
      std::string e1 = std::string("LD_PRELOAD=") + ENVRUN_TEST_INTERCEPT_LIB, e2 = "ENVRUN_INTERCEPT_DB=" + in.db,
                  e3 = "ENVRUN_INTERCEPT_CTL=" + in.ctl, e4 = ckpt_thread ? "" : "ENVRUN_INTERCEPT_CKPT=off";
      char* env[] = {e1.data(), e2.data(), e3.data(), e4.data(), nullptr};
      char* argv[] = {const_cast<char*>(ENVRUN_TEST_STDIO_PROG), file.data(), const_cast<char*>("flushed"), nullptr};
      ::execve(argv[0], argv, e4.empty() ? (env[3] = nullptr, env) : env);
      ::_exit(127);
    }
    ::close(fds[1]);
    out = fds[0];
    REQUIRE(read_line() == "READY");
  }
  ~Program() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    ::close(out);
  }
  std::string read_line() {
    std::string line;
    char c;
    while (::read(out, &c, 1) == 1 && c != '\n') line += c;
    return line;
  }
  // SIGTERM; the program's verdict line.
  std::string verdict() {
    ::kill(pid, SIGTERM);
    std::string v = read_line();
    ::waitpid(pid, nullptr, 0);
    pid = -1;
    return v;
  }
};

// The counter once it moved past `from` (bounded), or `from`.
uint64_t wait_moved(const Instance& in, ictl::Counter c, uint64_t from) {
  for (int i = 0; i < 300 && in.counter(c) == from; ++i) std::this_thread::sleep_for(10ms);
  return in.counter(c);
}

// Every thread of pid in the stopped state (bounded wait: SIGSTOP is asynchronous).
bool all_stopped(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  for (int i = 0; i < 300; ++i) {
    bool all = true;
    for (const auto& t : fs::list_dir(dir)) {
      std::string st = read_text(dir + "/" + t + "/stat");
      size_t p = st.rfind(')');
      if (p == std::string::npos || p + 2 >= st.size() || st[p + 2] != 'T') all = false;
    }
    if (all) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

std::string thread_comm(pid_t pid, pid_t tid) {
  std::string s = read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  return s.substr(0, s.find('\n'));
}

}  // namespace

TEST_CASE("the library's checkpoint thread: found, asked, stdio flushed, calls held until the release") {
  Instance in;
  Program prog(in);
  auto procs = ckpt::find_intercepted(prog.pid);
  REQUIRE(procs.size() == 1);
  REQUIRE(procs[0].ckpt_tid != 0);
  CHECK(thread_comm(prog.pid, procs[0].ckpt_tid) == "envrun-ckpt");
  CHECK(read_text(prog.file).empty());  // the text sits in the stdio buffer
  uint64_t moving = wait_moved(in, ictl::kBytesWritten, in.counter(ictl::kBytesWritten));
  REQUIRE(moving > 0);  // the worker's pwrites are counted

  auto c = ckpt::InprocCheckpoint::begin(in.ctl, procs);
  REQUIRE(c);
  CHECK(c->asked() == 1);
  CHECK(c->answered() == 1);
  CHECK(in.page->barrier[ictl::kBarrierFlag].load() == 1);
  CHECK(thread_comm(prog.pid, procs[0].ckpt_tid) == "envrun-ckpt:ack");
  std::string text = read_text(prog.file);
  CHECK(text.size() == 4783);  // 120 lines, flushed by the checkpoint thread
  CHECK(text.rfind("stdio line 000: ", 0) == 0);

  uint64_t held = in.counter(ictl::kBytesWritten);
  std::this_thread::sleep_for(300ms);
  CHECK(in.counter(ictl::kBytesWritten) == held);  // the worker is parked at the barrier

  c->release();
  CHECK(in.page->barrier[ictl::kBarrierFlag].load() == 0);
  CHECK(wait_moved(in, ictl::kBytesWritten, held) > held);  // and goes on
  for (int i = 0; i < 100 && thread_comm(prog.pid, procs[0].ckpt_tid) != "envrun-ckpt"; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(thread_comm(prog.pid, procs[0].ckpt_tid) == "envrun-ckpt");
  CHECK(prog.verdict() == "PASS stdio");
}

TEST_CASE("two checkpoints in a row, then a restore seen by the library (a page whose epoch went back)") {
  Instance in;
  Program prog(in);
  auto procs = ckpt::find_intercepted(prog.pid);
  REQUIRE(procs.size() == 1);
  for (int round = 1; round <= 2; ++round) {
    auto c = ckpt::InprocCheckpoint::begin(in.ctl, procs);
    REQUIRE(c);
    CHECK(c->epoch() == uint64_t(round));
    CHECK(c->answered() == 1);
  }
  // What a restore looks like to the thread: a page whose epoch is below the one it
  // answered. Here the same page is turned into a "new" one while the thread waits.
  {
    auto c = ckpt::InprocCheckpoint::begin(in.ctl, procs);
    REQUIRE(c);
    REQUIRE(c->answered() == 1);
    uint64_t started = in.counter(ictl::kProcessesStarted);
    in.page->barrier[ictl::kCkptAcks].store(uint64_t(ictl::kCkptRestoreTag) << 32);
    in.page->barrier[ictl::kCkptEpoch].store(0);
    ::syscall(SYS_futex, &in.page->barrier[ictl::kCkptRelease], FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
    for (int i = 0; i < 300 && uint32_t(in.page->barrier[ictl::kCkptAcks].load()) == 0; ++i)
      std::this_thread::sleep_for(10ms);
    CHECK(uint32_t(in.page->barrier[ictl::kCkptAcks].load()) == 1);  // restore hooks ran, answered
    CHECK(in.counter(ictl::kProcessesStarted) == started + 1);     // meter: a process of the new instance
  }  // released, unlocked
  // The thread waits beyond the new page's epoch: the next request is epoch 1 again.
  auto again = ckpt::InprocCheckpoint::begin(in.ctl, procs);
  REQUIRE(again);
  CHECK(again->epoch() == 1);
  CHECK(again->answered() == 1);
  again->release();
  CHECK(prog.verdict() == "PASS stdio");
}

TEST_CASE("a process that does not answer is reported and the checkpoint goes on; it catches up") {
  Instance in;
  Program prog(in);
  auto procs = ckpt::find_intercepted(prog.pid);
  REQUIRE(procs.size() == 1);
  REQUIRE(::kill(prog.pid, SIGSTOP) == 0);
  REQUIRE(all_stopped(prog.pid));
  ckpt::InprocOptions o;
  o.timeout_ms = 300;
  auto c = ckpt::InprocCheckpoint::begin(in.ctl, procs, o);
  REQUIRE(c);
  CHECK(c->asked() == 1);
  CHECK(c->answered() == 0);
  c->release();
  REQUIRE(::kill(prog.pid, SIGCONT) == 0);
  // The late thread finds its request released: nothing held, nothing flushed.
  uint64_t now = in.counter(ictl::kBytesWritten);
  CHECK(wait_moved(in, ictl::kBytesWritten, now) > now);
  CHECK(in.page->barrier[ictl::kBarrierFlag].load() == 0);
  std::string v = prog.verdict();
  CHECK(v.rfind("FAIL stdio: ", 0) == 0);  // "flushed" was asked for and nobody flushed
  CHECK(v.find("not flushed at the checkpoint") != std::string::npos);
}

TEST_CASE("ENVRUN_INTERCEPT_CKPT=off: no checkpoint thread, nothing asked") {
  Instance in;
  Program prog(in, /*ckpt_thread=*/false);
  auto procs = ckpt::find_intercepted(prog.pid);
  REQUIRE(procs.size() == 1);
  CHECK(procs[0].ckpt_tid == 0);
  auto c = ckpt::InprocCheckpoint::begin(in.ctl, procs);
  REQUIRE(c);
  CHECK(c->asked() == 0);
  CHECK(read_text(prog.file).empty());
}

TEST_CASE("a chain without the barrier interceptor: no checkpoint thread") {
  Instance in(/*barrier=*/false);
  Program prog(in);
  auto procs = ckpt::find_intercepted(prog.pid);
  REQUIRE(procs.size() == 1);
  CHECK(procs[0].ckpt_tid == 0);
  CHECK(prog.verdict().rfind("FAIL stdio: ", 0) == 0);  // nobody flushed
}

TEST_CASE("unshare(CLONE_NEWUSER) works in a process with the checkpoint thread") {
  Instance in;
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::string e1 = std::string("LD_PRELOAD=") + ENVRUN_TEST_INTERCEPT_LIB, e2 = "ENVRUN_INTERCEPT_DB=" + in.db,
                e3 = "ENVRUN_INTERCEPT_CTL=" + in.ctl;
    char* env[] = {e1.data(), e2.data(), e3.data(), nullptr};
    // unshare(1) is single-threaded; with the library it has the checkpoint thread too.
    char* argv[] = {const_cast<char*>("/usr/bin/unshare"), const_cast<char*>("-U"), const_cast<char*>("/bin/true"), nullptr};
    ::execve(argv[0], argv, env);
    ::_exit(127);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("--pid trees: the control page found through the process's mappings") {
  Instance in;
  Program prog(in);
  std::string page = ckpt::control_page_of(prog.pid);
  REQUIRE(page.rfind("/proc/" + std::to_string(prog.pid) + "/map_files/", 0) == 0);
  nlohmann::json inv = nlohmann::json::object();
  auto c = ckpt::inproc_checkpoint(prog.pid, "", inv);
  REQUIRE(c);
  REQUIRE(c->has_value());
  CHECK((*c)->answered() == 1);
  CHECK(inv["inproc"]["answered"] == 1);
  CHECK(!inv["inproc"].contains("control_page"));
  CHECK(read_text(prog.file).size() == 4783);
  c->reset();  // released
  CHECK(in.page->barrier[ictl::kBarrierFlag].load() == 0);
  CHECK(in.page->barrier[ictl::kCkptRelease].load() == 1);
}

TEST_CASE("a second engine waits until the first lets the page go") {
  Instance in;
  Program prog(in);
  auto procs = ckpt::find_intercepted(prog.pid);
  auto first = ckpt::InprocCheckpoint::begin(in.ctl, procs);
  REQUIRE(first);
  std::optional<ckpt::InprocCheckpoint> held(std::move(*first));
  std::atomic<bool> let_go{false};
  std::thread later([&] {
    std::this_thread::sleep_for(300ms);
    let_go = true;
    held.reset();  // released and unlocked
  });
  auto second = ckpt::InprocCheckpoint::begin(in.ctl, procs);
  bool after = let_go;
  later.join();
  REQUIRE(second);
  CHECK(after);  // it had waited for the first
  CHECK(second->epoch() == 2);
  CHECK(second->answered() == 1);
}
