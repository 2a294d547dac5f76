// The glue between the runtime's containers and the billing library (only cli/ may use
// both): what to sample for an instance, and its final interval when it goes.
//
// Metering is on for a host once its ledger exists (`envrun meterd` creates it; so does
// `envrun billing export`): `delete` then records the instance's last interval, so that
// what happened since the collector's last sample (short-lived processes included: the
// cgroup's CPU and memory counters keep what exited processes used) is not lost. Without a
// ledger, delete does no billing work at all.
//
// Instance attributes in the ledger: bundle = the annotation "envrun.billing.bundle", else
// `billing.bundle` of BUNDLE/envrun.yaml, else the bundle directory's name; labels =
// `billing.labels` of envrun.yaml, overridden key by key by the annotations
// "envrun.label.KEY" (KEY -> value).
#pragma once
#include <string>

#include "billing/sampler.hpp"
#include "billing/usage.hpp"
#include "kernel/result.hpp"
#include "runtime/state.hpp"

namespace envrun::cli::metering {

struct Target {
  billing::InstanceInfo info;
  billing::SamplerConfig sampler;
  int64_t created_ms = 0;
};

// The ledger: $ENVRUN_LEDGER when set, else billing::default_ledger_path().
std::string ledger_path();
// The cgroup mounts of this host, as the sampler wants them.
Result<billing::CgroupHierarchies> hierarchies();
// What to sample for this instance. ErrorKind::NotFound: it has no cgroup (an ordinary
// user's intercept-mode container) and no control page.
Result<Target> target_for(const runtime::StateStore& store, const runtime::ContainerState& st,
                          const billing::CgroupHierarchies& h);
// BUNDLE/envrun.yaml is valid (or absent): create and run refuse a bundle whose billing
// settings would be ignored.
Result<void> check_bundle_settings(const std::string& bundle_dir);
// RFC 3339 UTC ("2026-11-25T10:00:00.123456789Z") -> ms since the epoch.
Result<int64_t> parse_time_ms(const std::string& text);

// Sample the instance now (before its cgroup goes) ...
struct FinalSample {
  Target target;
  billing::Reading reading;
};
Result<FinalSample> take_final_sample(const runtime::StateStore& store, const std::string& id);
// ... and record its last interval, from the ledger's cursor (or its creation) to the sample.
Result<void> record_final(const std::string& ledger_path, const FinalSample& s);
// runtime::delete_container, with the last interval recorded when the host has a ledger
// (or always, creating the ledger, with `create_ledger`: a metered exec). A billing failure
// is a warning: the container is deleted all the same.
Result<void> delete_metered(const runtime::StateStore& store, const std::string& id, bool force, bool create_ledger = false);

}  // namespace envrun::cli::metering
