// The control page of a container instance (intercept/control.h) and the chain it drives.
#include "runtime/intercept_control.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "bundle/intercept_db.hpp"
#include "intercept/control.h"
#include "intercept/control_options.hpp"
#include "intercept/db_view.hpp"
#include "kernel/fd.hpp"
#include "kernel/fs.hpp"

namespace envrun::runtime {
namespace {

struct LoadedDb {
  std::string bytes;
  idb::DbView view;
};

Result<void> load_db(const std::string& path, LoadedDb& out) {
  out.bytes = ENVRUN_TRY(fs::read_file(path));
  if (const char* why = out.view.open(out.bytes.data(), out.bytes.size()))
    return Error::make(ErrorKind::System, path + ": " + why);
  return ok();
}

// A mapped control page; unmapped on destruction.
class MappedPage {
 public:
  ~MappedPage() {
    if (page_) ::munmap(page_, sizeof(ictl::ControlPage));
  }
  Result<void> map(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) return Error::sys("open " + path);
    struct stat sb;
    if (::fstat(fd.get(), &sb) != 0) return Error::sys("stat " + path);
    if (size_t(sb.st_size) < sizeof(ictl::ControlPage))
      return Error::make(ErrorKind::System, path + ": truncated control page");
    void* p = ::mmap(nullptr, sizeof(ictl::ControlPage), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) return Error::sys("mmap " + path);
    page_ = static_cast<ictl::ControlPage*>(p);
    if (std::memcmp(page_->magic, ictl::kMagic, sizeof ictl::kMagic) != 0 || page_->version != ictl::kVersion)
      return Error::make(ErrorKind::System, path + ": not an envrun control page");
    return ok();
  }
  ictl::ControlPage* operator->() const { return page_; }
  ictl::ControlPage* get() const { return page_; }

 private:
  ictl::ControlPage* page_ = nullptr;
};

// The chain with its live state: the mask, and option values set live over the DB's.
std::vector<InterceptorStatus> describe(const idb::DbView& db, const ictl::ControlPage* page) {
  uint64_t mask = page->enabled.load();
  std::vector<InterceptorStatus> out;
  for (uint32_t i = 0; i < db.interceptor_count(); ++i) {
    const auto& c = db.interceptors()[i];
    InterceptorStatus s{db.str(c.name), ((mask >> i) & 1u) != 0, {}};
    for (uint32_t k = 0; k < c.option_count; ++k) {
      const auto& o = db.options()[c.first_option + k];
      s.options.emplace_back(db.str(o.key), db.str(o.value));
    }
    for (uint32_t k = 0; k < ictl::kMaxOptionOverrides; ++k) {
      const auto& o = page->options[k];
      if (!o.used || o.interceptor != i) continue;
      char value[sizeof o.value];
      if (!ictl::read_option_override(page, i, o.key, value, sizeof value)) continue;
      std::string key(o.key, strnlen(o.key, sizeof o.key));
      std::erase_if(s.options, [&](const auto& kv) { return kv.first == key; });
      s.options.emplace_back(key, value);
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::string> instance_dir(const StateStore& store, const std::string& id) {
  ENVRUN_CHECK(StateStore::validate_id(id));
  auto st = ENVRUN_TRY(store.load(id));  // NotFound when absent
  std::string dir = store.dir(st.id);
  if (!fs::exists(dir + "/" + kInterceptCtlName))
    return Error::make(ErrorKind::State, "container \"" + id + "\" runs without the interception library (isolation: namespaces)");
  return dir;
}

}  // namespace

Result<void> create_control_page(const std::string& path, const idb::DbView& db) {
  ictl::ControlPage page;
  std::memset(static_cast<void*>(&page), 0, sizeof page);
  std::memcpy(page.magic, ictl::kMagic, sizeof page.magic);
  page.version = ictl::kVersion;
  page.size = sizeof page;
  uint64_t mask = 0;
  for (uint32_t i = 0; i < db.interceptor_count(); ++i)
    if (db.interceptors()[i].enabled) mask |= uint64_t(1) << i;
  page.enabled.store(mask);
  std::string bytes(reinterpret_cast<const char*>(&page), sizeof page);
  bytes.resize(size_t(::sysconf(_SC_PAGESIZE)), '\0');
  // 0666: the application may run as another user than envrun (process.user); the meter
  // counters and the barrier words are written from inside.
  ENVRUN_CHECK(fs::atomic_write(path, bytes, 0644, /*durable=*/false));
  if (::chmod(path.c_str(), 0666) != 0) return Error::sys("chmod " + path);
  return ok();
}

Result<std::vector<InterceptorStatus>> intercept_chain(const StateStore& store, const std::string& id) {
  std::string dir = ENVRUN_TRY(instance_dir(store, id));
  LoadedDb db;
  ENVRUN_CHECK(load_db(dir + "/" + kInterceptDbName, db));
  MappedPage page;
  ENVRUN_CHECK(page.map(dir + "/" + kInterceptCtlName));
  return describe(db.view, page.get());
}

Result<std::vector<InterceptorStatus>> intercept_set(const StateStore& store, const std::string& id,
                                                     const std::vector<std::string>& enable,
                                                     const std::vector<std::string>& disable) {
  std::string dir = ENVRUN_TRY(instance_dir(store, id));
  LoadedDb db;
  ENVRUN_CHECK(load_db(dir + "/" + kInterceptDbName, db));
  uint64_t on = 0, off = 0;
  std::string unknown;
  auto bits = [&](const std::vector<std::string>& names, uint64_t& acc) {
    for (auto& n : names) {
      int i = db.view.interceptor_index(n.c_str());
      if (i < 0) unknown += (unknown.empty() ? "" : ", ") + n;
      else acc |= uint64_t(1) << i;
    }
  };
  bits(enable, on);
  bits(disable, off);
  if (!unknown.empty()) {
    std::string valid;
    for (uint32_t i = 0; i < db.view.interceptor_count(); ++i)
      valid += (valid.empty() ? "" : ", ") + std::string(db.view.str(db.view.interceptors()[i].name));
    return Error::make(ErrorKind::Usage, "no interceptor named " + unknown + " in this container's chain (it has: " + valid + ")");
  }
  if (on & off) return Error::make(ErrorKind::Usage, "an interceptor cannot be enabled and disabled at once");
  MappedPage page;
  ENVRUN_CHECK(page.map(dir + "/" + kInterceptCtlName));
  // One atomic read-modify-write: a batch is seen whole or not at all.
  uint64_t old = page->enabled.load();
  while (!page->enabled.compare_exchange_weak(old, (old | on) & ~off)) {
  }
  page->generation.fetch_add(1);
  return describe(db.view, page.get());
}

Result<std::vector<InterceptorStatus>> intercept_configure(const StateStore& store, const std::string& id,
                                                           const std::string& name,
                                                           const std::vector<std::string>& assignments) {
  std::string dir = ENVRUN_TRY(instance_dir(store, id));
  LoadedDb db;
  ENVRUN_CHECK(load_db(dir + "/" + kInterceptDbName, db));
  int index = db.view.interceptor_index(name.c_str());
  if (index < 0) return Error::make(ErrorKind::Usage, "no interceptor named " + name + " in this container's chain");
  if (assignments.empty()) return Error::make(ErrorKind::Usage, "set needs KEY=VALUE");
  std::vector<std::pair<std::string, std::string>> kvs;
  for (auto& a : assignments) {  // all checked before any is written
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) return Error::make(ErrorKind::Usage, "\"" + a + "\": expected KEY=VALUE");
    kvs.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    ENVRUN_CHECK(bundle::check_interceptor_option(name, kvs.back().first, kvs.back().second));
  }
  MappedPage page;
  ENVRUN_CHECK(page.map(dir + "/" + kInterceptCtlName));
  for (auto& [k, v] : kvs)
    if (!ictl::write_option_override(page.get(), uint32_t(index), k.c_str(), v.c_str()))
      return Error::make(ErrorKind::System, "no room for option " + k + " on the control page (or key/value too long)");
  page->generation.fetch_add(1);
  return describe(db.view, page.get());
}

Result<std::string> intercept_library_path() {
  if (const char* env = std::getenv("ENVRUN_INTERCEPT_LIB"); env && *env) {
    if (::access(env, R_OK) != 0) return Error::sys("ENVRUN_INTERCEPT_LIB=" + std::string(env));
    return std::string(env);
  }
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0) return Error::sys("readlink /proc/self/exe");
  exe[n] = '\0';
  std::string dir = exe;
  dir = dir.substr(0, dir.rfind('/'));
  for (const char* rel : {"/../lib/envrun/libenvrun-intercept.so", "/../lib64/envrun/libenvrun-intercept.so",
                          "/../lib/x86_64-linux-gnu/envrun/libenvrun-intercept.so",
                          "/../intercept/libenvrun-intercept.so"}) {
    std::string p = fs::normalize(dir + rel);
    if (::access(p.c_str(), R_OK) == 0) return p;
  }
  return Error::make(ErrorKind::System, "libenvrun-intercept.so not found next to " + std::string(exe) +
                                            " (set ENVRUN_INTERCEPT_LIB)");
}

}  // namespace envrun::runtime
