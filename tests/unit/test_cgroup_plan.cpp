// Cgroup manager tests: which hierarchies a container joins, finding them again from the
// path alone, and joining a controller later (update). Real cgroups on this host.
#include "tests/unit/cgroup_test_support.hpp"

using namespace envrun_cgroup_test;

TEST_CASE("a container joins only the hierarchies its resources need", "[cgroup]") {
  auto mounts = host_mounts();
  auto res = default_resources();
  std::string p = test_path("plan");
  SECTION("the OCI default resources: memory, pids, cpuacct, devices and unified") {
    CgroupGuard cg(CgroupManager::make(mounts, p, &res));
    REQUIRE(cg->create().ok());
    REQUIRE(cg->apply(res).ok());
    CHECK(joined(mounts, p) == std::set<std::string>{"cpuacct", "devices", "memory", "pids"});
    CHECK(fs::is_dir(fs::join(mounts.unified, p)));
    CHECK(cg->dirs().size() == 5);
    CHECK(knob(mounts, "devices", p, "devices.list").find("c 1:3 rwm") != std::string::npos);
  }
  SECTION("cpu limits join cpu, cpus join cpuset, blockIO joins blkio") {
    res.cpu = oci::CpuResources{};
    res.cpu->shares = 256;
    CgroupGuard cg(CgroupManager::make(mounts, p, &res));
    REQUIRE(cg->create().ok());
    CHECK(joined(mounts, p) == std::set<std::string>{"cpu", "cpuacct", "devices", "memory", "pids"});
    REQUIRE(cg->apply(res).ok());
    CHECK(knob(mounts, "cpu", p, "cpu.shares") == "256");
    REQUIRE(cg->destroy().ok());

    res.cpu->shares.reset();
    res.cpu->mems = "0";
    res.block_io = oci::BlockIoResources{};
    res.block_io->weight = 100;
    CgroupGuard cg2(CgroupManager::make(mounts, p, &res));
    REQUIRE(cg2->create().ok());
    CHECK(joined(mounts, p) == std::set<std::string>{"blkio", "cpuacct", "cpuset", "devices", "memory", "pids"});
  }
  SECTION("empty cpu and blockIO objects join nothing") {
    res.cpu = oci::CpuResources{};
    res.block_io = oci::BlockIoResources{};
    res.devices.clear();
    CgroupGuard cg(CgroupManager::make(mounts, p, &res));
    REQUIRE(cg->create().ok());
    REQUIRE(cg->apply(res).ok());
    CHECK(joined(mounts, p) == std::set<std::string>{"cpuacct", "memory", "pids"});
  }
}

TEST_CASE("a manager made with only the path finds the container's hierarchies", "[cgroup]") {
  auto mounts = host_mounts();
  std::string p = test_path("found");
  auto res = default_resources();
  auto creator = CgroupManager::make(mounts, p, &res);
  REQUIRE(creator->create().ok());
  REQUIRE(creator->apply(res).ok());
  auto* counter = shared_counter();
  Child child([counter] {
    for (;;) counter->fetch_add(1);
    return 0;
  });
  REQUIRE(creator->add_process(child.pid).ok());
  child.go();
  REQUIRE(subprocess_wait_until_counter(counter, 1000));

  CgroupGuard later(CgroupManager::make(mounts, p));  // as `envrun delete`, `ps`, `events` do
  CHECK(later->dirs() == creator->dirs());
  REQUIRE(later->pids().ok());
  CHECK(*later->pids() == std::vector<pid_t>{child.pid});
  // pause through one manager, status through another (what `envrun state` does).
  REQUIRE(later->freeze().ok());
  CHECK(*CgroupManager::make(mounts, p)->is_frozen());
  CHECK(*CgroupManager::is_frozen_at(mounts, p));
  uint64_t before = counter->load();
  ::usleep(30000);
  CHECK(counter->load() == before);
  REQUIRE(CgroupManager::make(mounts, p)->thaw().ok());
  CHECK_FALSE(*CgroupManager::is_frozen_at(mounts, p));
  CHECK(subprocess_wait_until_counter(counter, before + 1000));
  auto stats = later->stats();
  REQUIRE(stats.ok());
  CHECK((*stats)["pids"]["current"].get<uint64_t>() == 1);
  CHECK((*stats)["cpu"]["usage"]["total"].get<uint64_t>() > 0);

  // A process added later (exec) goes to the same hierarchies, and only those.
  Child second(sleep_forever);
  REQUIRE(CgroupManager::make(mounts, p)->add_process(second.pid).ok());
  CHECK(in_cgroup(second.pid, "devices", p));
  CHECK(in_cgroup(second.pid, "", p));
  CHECK_FALSE(in_cgroup(second.pid, "cpu", p));
  CHECK(later->pids()->size() == 2);

  // Killed but not reaped: destroy waits for the cgroups to empty, then removes them all.
  ::kill(child.pid, SIGKILL);
  ::kill(second.pid, SIGKILL);
  auto d = later->destroy();
  INFO((d ? "" : d.error().message));
  REQUIRE(d.ok());
  CHECK(joined(mounts, p).empty());
  CHECK_FALSE(fs::exists(fs::join(mounts.unified, p)));
  CHECK(later->destroy().ok());    // idempotent
  CHECK(creator->destroy().ok());  // and the creator removes the parent level it made
  std::string root = "/envrun-test-" + std::to_string(::getpid());
  CHECK(joined(mounts, root).empty());
  CHECK_FALSE(fs::exists(fs::join(mounts.unified, root)));
  auto gone = CgroupManager::is_frozen_at(mounts, p);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().sys_errno == ENOENT);

  // No directory anywhere yet: "all hierarchies a resource could use" (not freezer, systemd).
  auto fresh = CgroupManager::make(mounts, test_path("nothing-yet"));
  CHECK(fresh->dirs().size() == 8);
  for (const auto& dir : fresh->dirs()) {
    CHECK(dir.find("/freezer/") == std::string::npos);
    CHECK(dir.find("/systemd/") == std::string::npos);
  }
  ::munmap(counter, 4096);
}

TEST_CASE("updating a controller the container did not join joins it and moves every process", "[cgroup]") {
  auto mounts = host_mounts();
  std::string p = test_path("late");
  CgroupGuard cg(CgroupManager::make(mounts, p, nullptr));
  REQUIRE(cg->create().ok());
  int res[2];
  REQUIRE(::pipe2(res, O_CLOEXEC) == 0);
  Child child([w = res[1]] {  // two processes: the child and the grandchild it forks
    pid_t k = ::fork();
    if (k == 0) {
      ::pause();
      ::_exit(0);
    }
    (void)!::write(w, &k, sizeof k);
    ::pause();
    ::kill(k, SIGKILL);
    return 0;
  });
  ::close(res[1]);
  REQUIRE(cg->add_process(child.pid).ok());
  child.go();
  pid_t grandchild = -1;
  REQUIRE(::read(res[0], &grandchild, sizeof grandchild) == sizeof grandchild);
  ::close(res[0]);
  std::vector<pid_t> both = {child.pid, grandchild};
  std::sort(both.begin(), both.end());
  auto early = CgroupManager::make(mounts, p);  // made before the join, used after it
  CHECK(joined(mounts, p).count("cpu") == 0);

  oci::Resources quota;
  quota.cpu = oci::CpuResources{};
  quota.cpu->quota = 20000;
  quota.cpu->period = 100000;
  auto r = CgroupManager::make(mounts, p)->apply(quota);  // `envrun update --cpu-quota`
  INFO((r ? "" : r.error().message));
  REQUIRE(r.ok());
  CHECK(knob(mounts, "cpu", p, "cpu.cfs_quota_us") == "20000");
  CHECK(*cgroup_detail::collect_pids(v1_dir(mounts, "cpu", p)) == both);

  // A bad value: the directory made for it goes again and nobody is moved.
  oci::Resources bad;
  bad.cpu = oci::CpuResources{};
  bad.cpu->cpus = "999";
  auto b = CgroupManager::make(mounts, p)->apply(bad);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().kind == ErrorKind::Config);
  CHECK(b.error().message.rfind("linux.resources.cpu.cpus: cpuset.cpus: invalid value", 0) == 0);
  CHECK_FALSE(fs::exists(v1_dir(mounts, "cpuset", p)));

  oci::Resources cpus;
  cpus.cpu = oci::CpuResources{};
  cpus.cpu->cpus = "0";
  REQUIRE(CgroupManager::make(mounts, p)->apply(cpus).ok());
  CHECK(knob(mounts, "cpuset", p, "cpuset.cpus") == "0");
  CHECK_FALSE(knob(mounts, "cpuset", p, "cpuset.mems").empty());
  CHECK(*cgroup_detail::collect_pids(v1_dir(mounts, "cpuset", p)) == both);
  CHECK(joined(mounts, p) == std::set<std::string>{"cpu", "cpuacct", "cpuset", "memory", "pids"});

  // The manager made before the join still puts a new process in the joined hierarchies.
  Child third(sleep_forever);
  REQUIRE(early->add_process(third.pid).ok());
  CHECK(in_cgroup(third.pid, "cpu", p));
  CHECK(in_cgroup(third.pid, "cpuset", p));

  // The creator's destroy also removes what was joined late by others.
  ::kill(third.pid, SIGKILL);
  ::kill(grandchild, SIGKILL);
  ::kill(child.pid, SIGKILL);
  REQUIRE(cg->destroy().ok());
  CHECK(joined(mounts, p).empty());
  CHECK_FALSE(fs::exists(fs::join(mounts.unified, p)));
  remove_test_root(mounts);
}

// Timings per step (printed, never asserted): `unit_cgroup "[cgroup-bench]"`.
TEST_CASE("cgroup manager timings", "[.][cgroup-bench]") {
  using Clock = std::chrono::steady_clock;
  auto mounts = host_mounts();
  auto res = default_resources();
  const char* names[] = {"make", "create", "apply", "add_process", "kill+reap", "destroy"};
  for (bool planned : {false, true}) {
    const int n = 50;
    double total_us[6] = {};
    for (int i = 0; i < n; ++i) {
      std::string p = test_path("bench" + std::to_string(i));
      Child child(sleep_forever);  // blocked on its pipe: timings exclude its first scheduling
      for (int j = 0; j < 10000 && proc::state_letter(child.pid) != 'S'; ++j) ::usleep(100);
      std::unique_ptr<CgroupManager> m;
      std::function<bool()> steps[6] = {
          [&] { return bool(m = planned ? CgroupManager::make(mounts, p, &res) : CgroupManager::make(mounts, p)); },
          [&] { return m->create().ok(); },
          [&] { return m->apply(res).ok(); },
          [&] { return m->add_process(child.pid).ok(); },
          [&] { return ::kill(child.pid, SIGKILL) == 0 && child.wait() != 0; },
          [&] { return m->destroy().ok(); }};
      for (int k = 0; k < 6; ++k) {
        auto t0 = Clock::now();
        REQUIRE(steps[k]());
        total_us[k] += std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      }
    }
    std::printf("%s:\n", planned ? "planned (OCI default devices)" : "all hierarchies (make without a plan)");
    for (int k = 0; k < 6; ++k) std::printf("  %-12s %8.1f us\n", names[k], total_us[k] / n);
  }
}
