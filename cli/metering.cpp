// Sampling targets for containers, and the final interval at delete (design in metering.hpp).
#include "cli/metering.hpp"

#include <cstdlib>
#include <ctime>

#include "billing/bundle_billing.hpp"
#include "billing/collector.hpp"
#include "billing/ledger.hpp"
#include "bundle/migration_policy.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/container.hpp"
#include "runtime/intercept_setup.hpp"

namespace envrun::cli::metering {

std::string ledger_path() {
  const char* e = std::getenv("ENVRUN_LEDGER");
  return e && *e ? e : billing::default_ledger_path();
}

Result<billing::CgroupHierarchies> hierarchies() {
  auto m = ENVRUN_TRY(runtime::CgroupMounts::detect());
  return billing::CgroupHierarchies{m.v1, m.unified};
}

Result<int64_t> parse_time_ms(const std::string& text) {
  struct tm tm {};
  const char* rest = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return Error::make(ErrorKind::Usage, "\"" + text + "\": not an RFC 3339 time (YYYY-MM-DDTHH:MM:SS[.frac]Z)");
  int64_t ms = 0;
  if (*rest == '.') {
    int64_t scale = 100;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10) ms += (*rest - '0') * scale;
  }
  if (std::string(rest) != "Z" && std::string(rest) != "+00:00")
    return Error::make(ErrorKind::Usage, "\"" + text + "\": give the time in UTC (ending in Z)");
  return int64_t(::timegm(&tm)) * 1000 + ms;
}

// The name a bundle directory bills under by default: its own name, but NAME for a
// version of an agent's library (DIR/library/NAME/versions/N, agent/library.hpp), whose
// directory name is only the version number.
std::string bundle_name_of(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::vector<std::string> parts;
  for (size_t at = 0; at <= dir.size();) {
    size_t next = dir.find('/', at);
    if (next == std::string::npos) next = dir.size();
    if (next > at) parts.push_back(dir.substr(at, next - at));
    at = next + 1;
  }
  if (parts.empty()) return dir;
  size_t n = parts.size();
  bool numeric = parts[n - 1].find_first_not_of("0123456789") == std::string::npos;
  if (n >= 4 && numeric && parts[n - 2] == "versions" && parts[n - 4] == "library") return parts[n - 3];
  return parts[n - 1];
}

Result<Target> target_for(const runtime::StateStore& store, const runtime::ContainerState& st,
                          const billing::CgroupHierarchies& h) {
  Target t;
  t.info.instance = st.id;
  t.info.bundle = bundle_name_of(st.bundle);
  // envrun.yaml was checked at create; if it was broken since, bill under the directory name.
  if (auto settings = billing::read_bundle_billing(st.bundle)) {
    if (!settings->bundle.empty()) t.info.bundle = settings->bundle;
    t.info.labels = settings->labels;
  } else {
    log::warn("instance " + st.id + ": " + settings.error().message + " (billing labels ignored)");
  }
  for (const auto& [k, v] : st.annotations) {
    if (k == "envrun.billing.bundle" && !v.empty()) t.info.bundle = v;
    if (k.rfind("envrun.label.", 0) == 0 && k.size() > 13) t.info.labels[k.substr(13)] = v;
  }
  t.created_ms = ENVRUN_TRY(parse_time_ms(st.created));
  t.sampler.hierarchies = h;
  t.sampler.cgroup_path = st.cgroup_path;
  std::string ctl = store.dir(st.id) + "/" + runtime::kInterceptDirName + "/intercept.ctl";
  if (fs::exists(ctl)) t.sampler.control_page = ctl;
  if (st.cgroup_path.empty() && t.sampler.control_page.empty())
    return Error::make(ErrorKind::NotFound, "instance " + st.id + ": no cgroup and no interception counters to meter");
  return t;
}

Result<void> check_bundle_settings(const std::string& bundle_dir) {
  auto settings = billing::read_bundle_billing(bundle_dir);
  if (!settings) return std::move(settings).error();
  auto migration = bundle::read_migration_policy(bundle_dir);  // the migration: section
  if (!migration) return std::move(migration).error();
  return ok();
}

Result<FinalSample> take_final_sample(const runtime::StateStore& store, const std::string& id) {
  auto st = ENVRUN_TRY(store.load(id));
  auto h = ENVRUN_TRY(hierarchies());
  FinalSample s{ENVRUN_TRY(target_for(store, st, h)), {}};
  auto sampler = ENVRUN_TRY(billing::InstanceSampler::open(s.target.sampler));
  s.reading = ENVRUN_TRY(sampler.sample());
  return s;
}

Result<void> record_final(const std::string& ledger_path, const FinalSample& s) {
  auto ledger = ENVRUN_TRY(billing::Ledger::open(ledger_path));
  auto tx = ENVRUN_TRY(ledger.transaction(true));  // the collector may be writing: serialize with it
  auto cursor = ENVRUN_TRY(ledger.cursor(s.target.info.instance));
  std::optional<billing::IntervalBuilder> b;
  if (cursor) b.emplace(ENVRUN_TRY(billing::IntervalBuilder::restore(s.target.info, *cursor)));
  else b.emplace(s.target.info, s.target.created_ms);
  if (s.reading.realtime_ms <= b->start_ms()) return ok();  // the collector's last interval already ends here
  b->add(s.reading);
  auto batch = b->flush(true);
  if (!batch) return ok();
  for (const auto& w : b->take_warnings()) log::warn("billing: " + w);
  ENVRUN_CHECK(ledger.record(*batch));
  return tx.commit();
}

Result<void> delete_metered(const runtime::StateStore& store, const std::string& id, bool force, bool create_ledger) {
  std::string ledger = ledger_path();
  std::optional<FinalSample> last;
  if (create_ledger || fs::exists(ledger)) {
    auto s = take_final_sample(store, id);
    if (s) last = std::move(*s);
    else if (s.error().kind != ErrorKind::NotFound) log::warn("delete " + id + ": billing: " + s.error().message);
  }
  ENVRUN_CHECK(runtime::delete_container(store, id, force));
  if (last) {
    auto rec = record_final(ledger, *last);
    if (!rec) log::warn("delete " + id + ": billing: the last interval was not recorded: " + rec.error().message);
  }
  return ok();
}

}  // namespace envrun::cli::metering
