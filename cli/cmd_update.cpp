// envrun update ID: change the resource limits of a running container.
#include <unistd.h>

#include <iostream>
#include <iterator>

#include "bundle/spec_parser.hpp"
#include "cli/cli.hpp"
#include "kernel/fs.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

struct UpdateFlags {
  std::string resources_file, cpus, mems;
  std::optional<int64_t> memory, reservation, swap, quota, pids;
  std::optional<uint64_t> period, shares;
  std::optional<uint16_t> blkio_weight;
};

// -r FILE|-: an OCI LinuxResources JSON object.
static Result<oci::Resources> load_resources(const std::string& file) {
  std::string text;
  if (file == "-") text.assign(std::istreambuf_iterator<char>(std::cin), {});
  else text = ENVRUN_TRY(fs::read_file(file));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::make(ErrorKind::Config, file + ": not a JSON object");
  nlohmann::json doc = {{"ociVersion", "1.2.0"}, {"root", {{"path", "/"}}}, {"linux", {{"resources", j}}}};
  auto spec = ENVRUN_TRY(bundle::parse_spec_json(doc.dump(), file));
  return spec.linux && spec.linux->resources ? *spec.linux->resources : oci::Resources{};
}

static oci::Resources from_flags(const UpdateFlags& f) {
  oci::Resources r;
  if (f.memory || f.reservation || f.swap) {
    r.memory = oci::MemoryResources{};
    r.memory->limit = f.memory;
    r.memory->reservation = f.reservation;
    r.memory->swap = f.swap;
  }
  if (f.quota || f.period || f.shares || !f.cpus.empty() || !f.mems.empty()) {
    r.cpu = oci::CpuResources{};
    r.cpu->quota = f.quota;
    r.cpu->period = f.period;
    r.cpu->shares = f.shares;
    r.cpu->cpus = f.cpus;
    r.cpu->mems = f.mems;
  }
  if (f.pids) r.pids = oci::PidsResources{*f.pids};
  if (f.blkio_weight) {
    r.block_io = oci::BlockIoResources{};
    r.block_io->weight = f.blkio_weight;
  }
  return r;
}

void add_update(CLI::App& app, Globals& g) {
  static std::string id;
  static UpdateFlags f;
  auto* sub = app.add_subcommand("update", "update the resource limits of a container");
  sub->add_option("id", id, "container id")->required();
  sub->add_option("-r,--resources", f.resources_file, "JSON file with linux.resources ('-' for stdin)");
  sub->add_option("--memory", f.memory, "memory limit (bytes)");
  sub->add_option("--memory-reservation", f.reservation, "memory soft limit (bytes)");
  sub->add_option("--memory-swap", f.swap, "memory+swap limit (bytes)");
  sub->add_option("--cpu-period", f.period, "CFS period (us)");
  sub->add_option("--cpu-quota", f.quota, "CFS quota (us)");
  sub->add_option("--cpu-share", f.shares, "CPU shares");
  sub->add_option("--cpuset-cpus", f.cpus, "CPUs allowed (0-1)");
  sub->add_option("--cpuset-mems", f.mems, "memory nodes allowed");
  sub->add_option("--pids-limit", f.pids, "maximum number of processes");
  sub->add_option("--blkio-weight", f.blkio_weight, "block IO weight (10-1000)");
  on_run(sub, g, "update", &id, [&g]() -> Result<int> {
    oci::Resources r = f.resources_file.empty() ? from_flags(f) : ENVRUN_TRY(load_resources(f.resources_file));
    ENVRUN_CHECK(runtime::update_container(g.store(), id, r));
    return 0;
  });
}

}  // namespace envrun::cli
