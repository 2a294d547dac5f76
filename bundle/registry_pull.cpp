// pull_image: the steps of a pull and the temp-dir-then-rename bundle assembly.
#include "bundle/registry_pull.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "bundle/registry_client.hpp"
#include "bundle/registry_fetch.hpp"
#include "bundle/registry_image_config.hpp"
#include "bundle/registry_manifest.hpp"
#include "bundle/registry_push.hpp"
#include "bundle/registry_progress.hpp"
#include "bundle/registry_store.hpp"
#include "bundle/registry_unpack.hpp"
#include "kernel/fs.hpp"
#include "kernel/log.hpp"

namespace envrun::registry {

namespace {
std::atomic<bool> g_cancel{false};
}  // namespace

void request_cancel() { g_cancel.store(true, std::memory_order_relaxed); }
bool cancel_requested() { return g_cancel.load(std::memory_order_relaxed); }
Error interrupted_error() { return Error::make(ErrorKind::Generic, "interrupted: no bundle was written (a partial download resumes next time)"); }

namespace {

// Removes the temp bundle unless released. The pull holds an flock on it while it works,
// so that a later pull can tell a temp dir left by a killed pull from one in use.
struct TempDir {
  std::string path;
  UniqueFd lock;
  TempDir(std::string p, UniqueFd l) : path(std::move(p)), lock(std::move(l)) {}
  TempDir(TempDir&& o) noexcept : path(std::exchange(o.path, {})), lock(std::move(o.lock)) {}
  ~TempDir() {
    if (!path.empty()) (void)fs::remove_tree(path);
  }
};

// Temp dirs ".NAME.pull-*" beside the bundle that no pull holds any more (SIGKILL, power
// loss) are removed: nothing else names them.
void remove_stale_temps(const std::string& dir, const std::string& base) {
  std::string prefix = "." + base + ".pull-";
  for (const auto& name : fs::list_dir(dir)) {
    if (name.rfind(prefix, 0) != 0 || name.size() != prefix.size() + 6) continue;
    std::string path = dir + "/" + name;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;  // in use by a running pull
    log::debug("pull: removing " + path + ", left by a pull that did not finish");
    (void)fs::remove_tree(path);
  }
}

Result<TempDir> make_temp_beside(const std::string& bundle) {
  auto slash = bundle.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : bundle.substr(0, slash);
  std::string base = slash == std::string::npos ? bundle : bundle.substr(slash + 1);
  if (dir.empty()) dir = "/";
  ENVRUN_CHECK(fs::mkdir_p(dir));
  remove_stale_temps(dir, base);
  std::string tmpl = dir + "/." + base + ".pull-XXXXXX";
  if (!::mkdtemp(tmpl.data())) return Error::sys("bundle: cannot create a temp dir in " + dir);
  TempDir t{tmpl, UniqueFd(::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC))};
  if (!t.lock || ::flock(t.lock.get(), LOCK_EX) != 0) return Error::sys("bundle: locking " + tmpl);
  ::chmod(tmpl.c_str(), 0755);
  return t;
}

Result<void> check_bundle_free(const std::string& bundle) {
  struct stat st {};
  if (::lstat(bundle.c_str(), &st) != 0) return ok();
  if (S_ISDIR(st.st_mode) && fs::list_dir(bundle).empty()) return ok();
  return Error::make(ErrorKind::State, "bundle " + bundle + ": already exists (remove it or choose --bundle)");
}

// A full disk while unpacking: one system error naming the directory (the layer error
// keeps the errno of the write that failed).
Error unpack_error(Error e, const std::string& rootfs) {
  bool full = e.sys_errno == ENOSPC;
  bool quota = e.sys_errno == EDQUOT;
  if (!full && !quota) return e;
  std::string dir = rootfs.substr(0, rootfs.find_last_of('/'));
  dir = dir.substr(0, dir.find_last_of('/'));
  if (dir.empty()) dir = ".";
  return Error{full ? ENOSPC : EDQUOT, ErrorKind::System, "bundle: unpacking into " + dir + ": " + e.message};
}

Result<void> unpack_all(const ImageManifest& m, const BlobStore& store, const std::string& rootfs, PullReport& rep,
                        PullProgress& progress) {
  if (::mkdir(rootfs.c_str(), 0755) != 0) return Error::sys(rootfs);
  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return Error::sys(rootfs);
  for (size_t i = 0; i < m.layers.size(); ++i) {
    if (cancel_requested()) return interrupted_error();
    const auto& l = m.layers[i];
    std::string what = "layer " + std::to_string(i + 1) + "/" + std::to_string(m.layers.size()) + " " + l.digest;
    auto unpacked = unpack_layer(store.blob_path(l.digest), root.get(), what);
    if (!unpacked) return unpack_error(std::move(unpacked).error(), rootfs);
    auto st = *unpacked;
    rep.entries += st.entries;
    progress.unpacked(l.digest, st.entries, st.bytes);
    log::debug("pull: unpacked " + what + ": " + std::to_string(st.entries) + " entries, " + std::to_string(st.bytes) + " bytes");
  }
  return ok();
}

}  // namespace

Result<PullReport> pull_image(const PullOptions& o, PullProgress& progress) {
  auto ref = ENVRUN_TRY(parse_reference(o.reference));
  Platform plat = o.platform.empty() ? host_platform() : ENVRUN_TRY(parse_platform(o.platform));
  PullReport rep;
  rep.bundle = o.bundle;
  if (rep.bundle.empty()) rep.bundle = ref.repository.substr(ref.repository.find_last_of('/') + 1);
  while (rep.bundle.size() > 1 && rep.bundle.back() == '/') rep.bundle.pop_back();
  ENVRUN_CHECK(check_bundle_free(rep.bundle));
  BlobStore store(o.store.empty() ? default_data_root() : o.store);
  ENVRUN_CHECK(store.init());

  RegistryClient client(ref, o.insecure);
  if (!o.authfile.empty()) client.set_auth_file(o.authfile);
  ENVRUN_CHECK(client.connect());
  auto m = ENVRUN_TRY(fetch_manifest(client, plat));
  rep.manifest_digest = m.digest;
  rep.layers = int(m.layers.size());
  std::vector<Descriptor> blobs{m.config};
  blobs.insert(blobs.end(), m.layers.begin(), m.layers.end());
  progress.start(m.layers);
  auto fs_stats = ENVRUN_TRY(fetch_blobs(client, store, blobs, o.jobs, progress));
  rep.downloaded = fs_stats.downloaded;
  rep.reused = fs_stats.reused;
  rep.bytes = fs_stats.bytes;
  log::debug("pull: " + std::to_string(rep.downloaded) + " blobs downloaded (" + std::to_string(rep.bytes) + " bytes), " +
             std::to_string(rep.reused) + " already in the store");

  TempDir tmp = ENVRUN_TRY(make_temp_beside(rep.bundle));
  ENVRUN_CHECK(unpack_all(m, store, tmp.path + "/rootfs", rep, progress));
  std::string cfg_text = ENVRUN_TRY(store.read(m.config.digest));
  auto spec = ENVRUN_TRY(spec_from_image_config(cfg_text, tmp.path + "/rootfs", ref.str()));
  ENVRUN_CHECK(fs::atomic_write(tmp.path + "/config.json", spec.dump(4) + "\n", 0644, false));
  ENVRUN_CHECK(fs::atomic_write(tmp.path + "/intercept.yaml", default_intercept_yaml(ref.str()), 0644, false));
  ENVRUN_CHECK(restore_bundle_files(m, tmp.path));  // config.json, intercept.yaml of a pushed bundle
  ENVRUN_CHECK(check_bundle_free(rep.bundle));  // nobody took the name meanwhile
  if (::rename(tmp.path.c_str(), rep.bundle.c_str()) != 0) return Error::sys("bundle " + rep.bundle + ": rename");
  tmp.path.clear();
  progress.complete(rep);
  return rep;
}

}  // namespace envrun::registry
