// The bundle library: versions copied in under a temporary name, validated, renamed into
// place; `current` switched by renaming a new symlink over it. One flock per bundle name
// (DIR/library/.NAME.lock) orders writers (the API serves requests concurrently).
#include "agent/library.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <random>

#include <nlohmann/json.hpp>

#include "agent/tree_copy.hpp"
#include "kernel/fd.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"
#include "runtime/state.hpp"

namespace envrun::agent {

namespace {

Error usage(const std::string& m) { return Error::make(ErrorKind::Usage, m); }

// An exclusive flock held for the object's life.
class NameLock {
 public:
  static Result<NameLock> take(const std::string& path) {
    NameLock l;
    l.fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!l.fd_) return Error::sys(path);
    if (::flock(l.fd_.get(), LOCK_EX) < 0) return Error::sys("flock " + path);
    return l;
  }

 private:
  UniqueFd fd_;
};

std::string random_suffix() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", unsigned(rd()));
  return buf;
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

// A decimal version number (no sign, no leading zero), else 0.
int parse_version(const std::string& s) {
  if (s.empty() || s.size() > 9 || s[0] == '0') return 0;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return 0;
  return std::atoi(s.c_str());
}

bool is_changeable(const std::string& file) {
  return file == "config.json" || file == "config.yaml" || file == "intercept.yaml" || file == "envrun.yaml";
}

}  // namespace

Library::Library(std::string root_dir) : root_(std::move(root_dir)) {}

Result<void> Library::validate_name(const std::string& name) {
  if (name.empty()) return usage("bundle name must not be empty");
  if (name.size() > 128) return usage("bundle name is longer than 128 characters");
  if (name[0] == '.') return usage("invalid bundle name \"" + name + "\": must not start with '.'");
  for (unsigned char c : name)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.'))
      return usage("invalid bundle name \"" + name + "\": only letters, digits and _ . - are allowed");
  return ok();
}

Result<BundleVersion> Library::version(const std::string& name, int n) const {
  ENVRUN_CHECK(validate_name(name));
  std::string dir = version_dir(name, n);
  if (n <= 0 || !fs::is_dir(dir))
    return Error::make(ErrorKind::NotFound, "bundle " + name + " has no version " + std::to_string(n));
  BundleVersion v{name, n, dir, "", ""};
  auto meta = fs::read_file(dir + ".meta.json");
  if (meta) {
    auto j = nlohmann::json::parse(*meta, nullptr, false);
    if (j.is_object()) {
      v.created = j.value("created", "");
      v.source = j.value("source", "");
    }
  }
  return v;
}

Result<std::vector<BundleVersion>> Library::versions(const std::string& name) const {
  ENVRUN_CHECK(validate_name(name));
  if (!fs::is_dir(bundle_dir(name) + "/versions"))
    return Error::make(ErrorKind::NotFound, "no bundle named " + name + " in the library");
  std::vector<int> ns;
  for (const auto& e : fs::list_dir(bundle_dir(name) + "/versions"))
    if (int n = parse_version(e); n > 0 && fs::is_dir(version_dir(name, n))) ns.push_back(n);
  std::sort(ns.begin(), ns.end());
  std::vector<BundleVersion> out;
  for (int n : ns) out.push_back(ENVRUN_TRY(version(name, n)));
  return out;
}

Result<BundleVersion> Library::current(const std::string& name) const {
  ENVRUN_CHECK(validate_name(name));
  std::string link = bundle_dir(name) + "/current";
  char buf[256];
  ssize_t k = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (k < 0) {
    if (errno == ENOENT) return Error::make(ErrorKind::NotFound, "no bundle named " + name + " in the library");
    return Error::sys(link);
  }
  std::string target(buf, size_t(k));
  if (target.rfind("versions/", 0) != 0 || parse_version(target.substr(9)) <= 0)
    return Error::make(ErrorKind::Generic, link + ": points to \"" + target + "\", not versions/N");
  return version(name, parse_version(target.substr(9)));
}

Result<std::vector<std::string>> Library::names() const {
  std::vector<std::string> out;
  for (const auto& e : fs::list_dir(library_dir()))
    if (validate_name(e) && fs::is_dir(bundle_dir(e) + "/versions")) out.push_back(e);
  std::sort(out.begin(), out.end());
  return out;
}

Result<BundleVersion> Library::add(const std::string& name, const std::string& src_dir) {
  ENVRUN_CHECK(validate_name(name));
  ENVRUN_CHECK(fs::mkdir_p(library_dir(), 0700));
  auto lock = ENVRUN_TRY(NameLock::take(library_dir() + "/." + name + ".lock"));
  if (fs::exists(bundle_dir(name) + "/current"))
    return Error::make(ErrorKind::State, "bundle " + name + " is in the library already (publish a new version instead)");
  return install(name, 1, src_dir, "dir:" + src_dir, "", "");
}

Result<BundleVersion> Library::publish(const std::string& name, const std::string& src_dir) {
  ENVRUN_CHECK(validate_name(name));
  ENVRUN_CHECK(fs::mkdir_p(library_dir(), 0700));
  auto lock = ENVRUN_TRY(NameLock::take(library_dir() + "/." + name + ".lock"));
  auto all = ENVRUN_TRY(versions(name));
  int next = all.empty() ? 1 : all.back().version + 1;
  return install(name, next, src_dir, "dir:" + src_dir, "", "");
}

Result<BundleVersion> Library::change_file(const std::string& name, const std::string& file, const std::string& text) {
  ENVRUN_CHECK(validate_name(name));
  if (!is_changeable(file))
    return usage("\"" + file + "\": only config.json, config.yaml, intercept.yaml or envrun.yaml can be changed");
  ENVRUN_CHECK(fs::mkdir_p(library_dir(), 0700));
  auto lock = ENVRUN_TRY(NameLock::take(library_dir() + "/." + name + ".lock"));
  auto cur = ENVRUN_TRY(current(name));
  auto all = ENVRUN_TRY(versions(name));
  int next = all.back().version + 1;
  return install(name, next, cur.dir, "change:" + file + " (from " + std::to_string(cur.version) + ")", file, text);
}

Result<BundleVersion> Library::install(const std::string& name, int n, const std::string& src_dir,
                                       const std::string& source, const std::string& file, const std::string& text) {
  std::string what = "bundle " + name + " version " + std::to_string(n);
  if (!fs::is_dir(src_dir)) return usage(what + ": " + src_dir + ": not a directory");
  std::string versions_dir = bundle_dir(name) + "/versions";
  ENVRUN_CHECK(fs::mkdir_p(versions_dir, 0755));
  std::string tmp = bundle_dir(name) + "/.tmp-" + std::to_string(n) + "-" + random_suffix();
  auto fail = [&](Error e) -> Result<BundleVersion> {
    (void)fs::remove_tree(tmp);
    if (n == 1) (void)fs::remove_tree(bundle_dir(name));  // an add that failed leaves no name
    return std::move(e).with_context(what);
  };
  auto copied = copy_tree(src_dir, tmp);
  if (!copied) return fail(std::move(copied).error());
  if (!file.empty()) {
    if (file == "config.json" || file == "config.yaml")  // one config per bundle
      for (const char* other : {"config.json", "config.yaml", "config.yml"})
        if (file != other) ::unlink((tmp + "/" + other).c_str());
    if (auto w = fs::atomic_write(tmp + "/" + file, text, 0644, false); !w) return fail(std::move(w).error());
  }
  if (auto v = validate_bundle_dir(tmp); !v) return fail(std::move(v).error());
  // The bytes reach the disk before the version becomes visible.
  {
    UniqueFd d(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d || ::syncfs(d.get()) < 0) return fail(Error::sys("sync " + tmp));
  }
  BundleVersion v{name, n, version_dir(name, n), log::now_rfc3339(), source};
  nlohmann::json meta = {{"name", name}, {"version", n}, {"created", v.created}, {"source", source}};
  if (auto w = fs::atomic_write(v.dir + ".meta.json", meta.dump() + "\n", 0644); !w) return fail(std::move(w).error());
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, v.dir.c_str(), RENAME_NOREPLACE) < 0) {
    Error e = Error::sys("rename to " + v.dir);
    ::unlink((v.dir + ".meta.json").c_str());
    return fail(std::move(e));
  }
  std::string link_tmp = bundle_dir(name) + "/.current-" + random_suffix();
  std::string target = "versions/" + std::to_string(n);
  if (::symlink(target.c_str(), link_tmp.c_str()) < 0 ||
      ::rename(link_tmp.c_str(), (bundle_dir(name) + "/current").c_str()) < 0) {
    Error e = Error::sys("switch " + bundle_dir(name) + "/current to " + target);
    ::unlink(link_tmp.c_str());
    return std::move(e).with_context(what);  // the version stays: publish it again to switch
  }
  UniqueFd bd(::open(bundle_dir(name).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (bd) ::fsync(bd.get());
  v.dir = real_path(v.dir);
  return v;
}

std::vector<std::string> Library::instances_of(const std::string& name) const {
  std::vector<std::string> out;
  std::string prefix = real_path(bundle_dir(name)) + "/";
  runtime::StateStore store(root_ + "/state");
  for (const auto& id : store.ids()) {
    auto st = store.load(id);
    if (st && (st->bundle + "/").rfind(prefix, 0) == 0) out.push_back(id);
  }
  return out;
}

Result<BundleVersion> Library::owner_of(const std::string& dir) const {
  std::string lib = real_path(library_dir()) + "/";
  std::string d = real_path(dir);
  auto not_ours = Error::make(ErrorKind::NotFound, dir + ": not a version of a library bundle in " + library_dir());
  if (d.rfind(lib, 0) != 0) return not_ours;
  std::string rest = d.substr(lib.size());  // NAME/versions/N
  auto s1 = rest.find('/');
  if (s1 == std::string::npos || rest.compare(s1, 10, "/versions/") != 0) return not_ours;
  std::string name = rest.substr(0, s1);
  int n = parse_version(rest.substr(s1 + 10));
  if (n <= 0 || !validate_name(name)) return not_ours;
  return version(name, n);
}

Result<void> Library::remove(const std::string& name) {
  ENVRUN_CHECK(validate_name(name));
  auto lock = ENVRUN_TRY(NameLock::take(library_dir() + "/." + name + ".lock"));
  if (!fs::is_dir(bundle_dir(name))) return Error::make(ErrorKind::NotFound, "no bundle named " + name + " in the library");
  auto users = instances_of(name);
  if (!users.empty()) {
    std::string list;
    for (const auto& id : users) list += (list.empty() ? "" : ", ") + id;
    return Error::make(ErrorKind::State, "bundle " + name + " is used by instance(s) " + list + " (delete them first)");
  }
  std::string gone = library_dir() + "/.removing-" + name + "-" + random_suffix();
  if (::rename(bundle_dir(name).c_str(), gone.c_str()) < 0) return Error::sys("rename " + bundle_dir(name));
  ENVRUN_CHECK(fs::remove_tree(gone));
  return ok();
}

}  // namespace envrun::agent
