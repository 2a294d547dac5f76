// User switch and capability sets: bounding drop, groups, uid/gid, E/P/I via libcap, ambient.
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <grp.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <type_traits>

#include "bundle/capability_names.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "runtime/security.hpp"

namespace envrun::runtime {
namespace {

// One resolved capability set: a bit mask (bit n = capability n).
using CapMask = uint64_t;
using CapHandle = std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)>;

struct ResolvedCaps {
  CapMask bounding = 0, effective = 0, inheritable = 0, permitted = 0, ambient = 0;
};

bool has(CapMask m, int cap) { return (m >> cap) & 1U; }

Result<CapMask> resolve_set(const std::vector<std::string>& names, const char* set) {
  CapMask mask = 0;
  for (const auto& n : names) {
    int c = capability_from_name(n);
    if (c < 0)
      return Error::make(ErrorKind::Config,
                         std::string("process.capabilities.") + set + ": unknown capability \"" + n + "\"");
    mask |= CapMask{1} << c;
  }
  return mask;
}

// First capability in `sub` missing from `super`, or -1.
int first_missing(CapMask sub, CapMask super) {
  for (int c = 0; c < 64; ++c)
    if (has(sub, c) && !has(super, c)) return c;
  return -1;
}

Result<ResolvedCaps> resolve(const oci::Capabilities& caps) {
  ResolvedCaps r;
  r.bounding = ENVRUN_TRY(resolve_set(caps.bounding, "bounding"));
  r.effective = ENVRUN_TRY(resolve_set(caps.effective, "effective"));
  r.inheritable = ENVRUN_TRY(resolve_set(caps.inheritable, "inheritable"));
  r.permitted = ENVRUN_TRY(resolve_set(caps.permitted, "permitted"));
  r.ambient = ENVRUN_TRY(resolve_set(caps.ambient, "ambient"));
  if (int c = first_missing(r.effective, r.permitted); c >= 0)
    return Error::make(ErrorKind::Config, "process.capabilities.effective: \"" + capability_name(c) +
                                              "\" is not in the permitted set");
  // The kernel raises an ambient capability only when it is permitted and inheritable.
  // runc accepts such configs (its own `runc spec` default is one) and skips them; so do we.
  for (int c = first_missing(r.ambient, r.permitted & r.inheritable); c >= 0;
       c = first_missing(r.ambient, r.permitted & r.inheritable)) {
    log::warn("process.capabilities.ambient: \"" + capability_name(c) +
              "\" is not in both the permitted and inheritable sets; not raised");
    r.ambient &= ~(CapMask{1} << c);
  }
  return r;
}

// Capabilities the running kernel does not know cannot be set: drop them with a warning.
void mask_to_kernel(ResolvedCaps& r) {
  int last = last_capability();
  CapMask known = last >= 63 ? ~CapMask{0} : (CapMask{1} << (last + 1)) - 1;
  CapMask all = r.bounding | r.effective | r.inheritable | r.permitted | r.ambient;
  if (CapMask unknown = all & ~known) {
    std::string names;
    for (int c = 0; c < 64; ++c)
      if (has(unknown, c)) names += (names.empty() ? "" : ", ") + capability_name(c);
    log::warn("capabilities not supported by this kernel are ignored: " + names);
  }
  for (CapMask* m : {&r.bounding, &r.effective, &r.inheritable, &r.permitted, &r.ambient}) *m &= known;
}

Result<void> drop_bounding(CapMask keep) {
  int last = last_capability();
  for (int c = 0; c <= last; ++c) {
    if (has(keep, c)) continue;
    int present = ::prctl(PR_CAPBSET_READ, c, 0, 0, 0);
    if (present == 0 || (present < 0 && errno == EINVAL)) continue;
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
      return Error::sys("process.capabilities.bounding: dropping " + capability_name(c));
  }
  return ok();
}

Result<void> set_keepcaps(bool on) {
  if (::prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0) != 0) return Error::sys("prctl(PR_SET_KEEPCAPS)");
  return ok();
}

Result<void> switch_user(const oci::User& user) {
  const auto& gids = user.additional_gids;
  std::vector<gid_t> groups(gids.begin(), gids.end());
  if (::setgroups(groups.size(), groups.data()) != 0) {
    // In a user namespace with /proc/self/setgroups "deny" an empty list cannot be set either.
    if (!(errno == EPERM && groups.empty())) return Error::sys("process.user.additionalGids: setgroups");
  }
  if (::setresgid(user.gid, user.gid, user.gid) != 0)
    return Error::sys("process.user.gid: setresgid(" + std::to_string(user.gid) + ")");
  if (::setresuid(user.uid, user.uid, user.uid) != 0)
    return Error::sys("process.user.uid: setresuid(" + std::to_string(user.uid) + ")");
  return ok();
}

Result<void> set_flag(cap_t caps, cap_flag_t flag, CapMask mask) {
  std::vector<cap_value_t> list;
  for (int c = 0; c < 64; ++c)
    if (has(mask, c)) list.push_back(c);
  if (list.empty()) return ok();
  if (::cap_set_flag(caps, flag, int(list.size()), list.data(), CAP_SET) != 0)
    return Error::sys("cap_set_flag");
  return ok();
}

Result<void> set_process_caps(const ResolvedCaps& r) {
  CapHandle caps(::cap_init(), ::cap_free);
  if (!caps) return Error::sys("cap_init");
  ENVRUN_CHECK(set_flag(caps.get(), CAP_EFFECTIVE, r.effective));
  ENVRUN_CHECK(set_flag(caps.get(), CAP_PERMITTED, r.permitted));
  ENVRUN_CHECK(set_flag(caps.get(), CAP_INHERITABLE, r.inheritable));
  if (::cap_set_proc(caps.get()) != 0)
    return Error::sys("process.capabilities: setting effective/permitted/inheritable (capset)");
  return ok();
}

Result<void> set_ambient(CapMask ambient) {
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return Error::sys("process.capabilities.ambient: clearing");
  for (int c = 0; c < 64; ++c) {
    if (!has(ambient, c)) continue;
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0)
      return Error::sys("process.capabilities.ambient: raising " + capability_name(c));
  }
  return ok();
}

}  // namespace

int capability_from_name(const std::string& name) { return bundle::capability_number(name); }

std::string capability_name(int cap) {
  if (cap >= 0 && size_t(cap) < bundle::kCapabilityNames.size()) return std::string(bundle::kCapabilityNames[cap]);
  return "CAP_" + std::to_string(cap);
}

int last_capability() {
  static const int cached = [] {
    auto s = fs::read_file("/proc/sys/kernel/cap_last_cap");
    if (s) {
      char* end = nullptr;
      long v = std::strtol(s->c_str(), &end, 10);
      if (end != s->c_str() && v > 0 && v < 64) return int(v);
    }
    return int(bundle::kCapabilityNames.size()) - 1;
  }();
  return cached;
}

bool has_effective_capability(int cap) {
  CapHandle caps(::cap_get_proc(), ::cap_free);
  if (!caps) return false;
  cap_flag_value_t v = CAP_CLEAR;
  if (::cap_get_flag(caps.get(), cap, CAP_EFFECTIVE, &v) != 0) return false;
  return v == CAP_SET;
}

Result<void> apply_user_and_capabilities(const oci::User& user,
                                         const std::optional<oci::Capabilities>& caps) {
  std::optional<ResolvedCaps> r;
  if (caps) {
    r = ENVRUN_TRY(resolve(*caps));
    mask_to_kernel(*r);
  }
  if (user.umask) ::umask(mode_t(*user.umask) & 07777);
  if (r) {
    ENVRUN_CHECK(drop_bounding(r->bounding));
    ENVRUN_CHECK(set_keepcaps(true));
  }
  ENVRUN_CHECK(switch_user(user));
  if (!r) return ok();
  ENVRUN_CHECK(set_process_caps(*r));
  ENVRUN_CHECK(set_keepcaps(false));
  return set_ambient(r->ambient);
}

}  // namespace envrun::runtime
