// JSON -> oci::Resources (linux.resources): device cgroup rules, memory, cpu, pids,
// blockIO, hugepages, unified, network and rdma.
#include "bundle/spec_decode.hpp"

namespace envrun::bundle::detail {

namespace {

void read_memory(Decoder& d, const Node& n, std::optional<oci::MemoryResources>& out) {
  if (!d.object(n)) return;
  oci::MemoryResources& m = out.emplace();
  d.read(n["limit"], m.limit);
  d.read(n["reservation"], m.reservation);
  d.read(n["swap"], m.swap);
  d.read(n["kernel"], m.kernel);
  d.read(n["kernelTCP"], m.kernel_tcp);
  d.read(n["swappiness"], m.swappiness);
  d.read(n["disableOOMKiller"], m.disable_oom_killer);
  d.read(n["useHierarchy"], m.use_hierarchy);
  d.read(n["checkBeforeUpdate"], m.check_before_update);
}

void read_cpu(Decoder& d, const Node& n, std::optional<oci::CpuResources>& out) {
  if (!d.object(n)) return;
  oci::CpuResources& c = out.emplace();
  d.read(n["shares"], c.shares);
  d.read(n["quota"], c.quota);
  d.read(n["burst"], c.burst);
  d.read(n["period"], c.period);
  d.read(n["realtimeRuntime"], c.realtime_runtime);
  d.read(n["realtimePeriod"], c.realtime_period);
  d.read(n["cpus"], c.cpus);
  d.read(n["mems"], c.mems);
  d.read(n["idle"], c.idle);
}

void read_throttle(Decoder& d, const Node& n, std::vector<oci::BlockIoDevice>& out) {
  d.each(n, out, [&](const Node& t, oci::BlockIoDevice& dev) {
    d.read(t["major"], dev.major);
    d.read(t["minor"], dev.minor);
    d.read(t["rate"], dev.rate);
  });
}

void read_block_io(Decoder& d, const Node& n, std::optional<oci::BlockIoResources>& out) {
  if (!d.object(n)) return;
  oci::BlockIoResources& b = out.emplace();
  d.read(n["weight"], b.weight);
  d.read(n["leafWeight"], b.leaf_weight);
  d.each(n["weightDevice"], b.weight_device, [&](const Node& w, oci::BlockIoDevice& dev) {
    d.read(w["major"], dev.major);
    d.read(w["minor"], dev.minor);
    d.read(w["weight"], dev.weight);
    d.read(w["leafWeight"], dev.leaf_weight);
  });
  read_throttle(d, n["throttleReadBpsDevice"], b.throttle_read_bps_device);
  read_throttle(d, n["throttleWriteBpsDevice"], b.throttle_write_bps_device);
  read_throttle(d, n["throttleReadIOPSDevice"], b.throttle_read_iops_device);
  read_throttle(d, n["throttleWriteIOPSDevice"], b.throttle_write_iops_device);
}

void read_network(Decoder& d, const Node& n, std::optional<oci::NetworkResources>& out) {
  if (!d.object(n)) return;
  oci::NetworkResources& net = out.emplace();
  d.read(n["classID"], net.class_id);
  Node prios = n["priorities"];
  for (size_t i = 0, count = d.size(prios); i < count && !d.failed(); ++i) {
    Node p = prios.at(i);
    if (!p) d.fail(p, "expected an object, got null");
    if (!d.object(p)) continue;
    std::string name;
    uint32_t priority = 0;
    d.read(p["name"], name);
    d.read(p["priority"], priority);
    net.priorities[name] = priority;
  }
}

void read_rdma(Decoder& d, const Node& n, std::map<std::string, oci::RdmaLimit>& out) {
  if (!d.object(n)) return;
  for (auto& [device, value] : n.v->items()) {
    Node r = n[device];
    oci::RdmaLimit& limit = out[device];
    if (!d.object(r)) continue;
    d.read(r["hcaHandles"], limit.hca_handles);
    d.read(r["hcaObjects"], limit.hca_objects);
  }
}

}  // namespace

void read_resources(Decoder& d, const Node& n, std::optional<oci::Resources>& out) {
  if (!d.object(n)) return;
  oci::Resources& r = out.emplace();
  d.each(n["devices"], r.devices, [&](const Node& dev, oci::DeviceCgroupRule& rule) {
    d.read(dev["allow"], rule.allow);
    d.read(dev["type"], rule.type);
    d.read(dev["major"], rule.major);
    d.read(dev["minor"], rule.minor);
    d.read(dev["access"], rule.access);
  });
  read_memory(d, n["memory"], r.memory);
  read_cpu(d, n["cpu"], r.cpu);
  if (Node p = n["pids"]; d.object(p)) d.read(p["limit"], r.pids.emplace().limit);
  read_block_io(d, n["blockIO"], r.block_io);
  d.each(n["hugepageLimits"], r.hugepage_limits, [&](const Node& h, oci::HugepageLimit& limit) {
    d.read(h["pageSize"], limit.page_size);
    d.read(h["limit"], limit.limit);
  });
  d.read(n["unified"], r.unified);
  read_network(d, n["network"], r.network);
  read_rdma(d, n["rdma"], r.rdma);
}

}  // namespace envrun::bundle::detail
