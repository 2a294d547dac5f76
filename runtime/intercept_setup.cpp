// plan_interception: what `create` does for envrun.isolation intercept | both.
#include "runtime/intercept_setup.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>

#include "bundle/intercept_db.hpp"
#include "intercept/db_view.hpp"
#include "kernel/fd.hpp"
#include "kernel/fs.hpp"
#include "kernel/process.hpp"
#include "kernel/log.hpp"
#include "runtime/intercept_control.hpp"
#include "runtime/rootfs.hpp"

namespace envrun::runtime {
namespace {

// Where an inside path really is (lexically, per the rule's mode; existence decides merge
// and writecopy), as the library would resolve it. nullopt: hidden.
std::optional<std::string> real_path(const idb::DbView& db, const std::string& inside) {
  std::string p = fs::normalize(inside);
  const idb::FileRule* r = db.match(p.data(), p.size());
  if (!r) return p;
  std::string rest = r->inside.len == 1 ? p : p.substr(r->inside.len);
  std::string outside = db.str(r->outside), upper = db.str(r->upper);
  switch (idb::FileMode(r->mode)) {
    case idb::FileMode::Hide: return std::nullopt;
    case idb::FileMode::Merge:
      if (fs::exists(fs::normalize(outside + "/" + rest))) return fs::normalize(outside + "/" + rest);
      return p;
    case idb::FileMode::WriteCopy:
      if (!upper.empty() && fs::exists(fs::normalize(upper + "/" + rest))) return fs::normalize(upper + "/" + rest);
      return outside.empty() ? p : fs::normalize(outside + "/" + rest);
    default: return fs::normalize(outside + "/" + rest);
  }
}

std::string env_value(const std::vector<std::string>& env, const std::string& name) {
  for (auto& e : env)
    if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=')
      return e.substr(name.size() + 1);
  return "";
}

void env_set(std::vector<std::string>& env, const std::string& name, const std::string& value) {
  for (auto& e : env)
    if (e.compare(0, name.size() + 1, name + "=") == 0) {
      e = name + "=" + value;
      return;
    }
  env.push_back(name + "=" + value);
}

void env_unset(std::vector<std::string>& env, const std::string& name) {
  std::erase_if(env, [&](const std::string& e) { return e.compare(0, name.size() + 1, name + "=") == 0; });
}

bool env_has(const std::vector<std::string>& env, const std::string& name) {
  for (auto& e : env)
    if (e.compare(0, name.size() + 1, name + "=") == 0) return true;
  return false;
}

void apply_env_rules(std::vector<std::string>& env, const idb::DbView& db) {
  for (uint32_t i = 0; i < db.env_count(); ++i) {
    const idb::EnvRule& r = db.env()[i];
    std::string name = db.str(r.name), value = db.str(r.value);
    std::string old = env_value(env, name);
    bool had = env_has(env, name);
    std::string sep(1, r.separator ? r.separator : ':');
    switch (idb::EnvOp(r.op)) {
      case idb::EnvOp::Set: env_set(env, name, value); break;
      case idb::EnvOp::Unset: env_unset(env, name); break;
      case idb::EnvOp::Prepend: env_set(env, name, had && !old.empty() ? value + sep + old : value); break;
      case idb::EnvOp::Append: env_set(env, name, had && !old.empty() ? old + sep + value : value); break;
    }
  }
}

bool executable_file(const std::string& p) {
  struct stat sb;
  return ::stat(p.c_str(), &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0111);
}

// process.args[0] as the library would find it: a path (relative to cwd), or PATH search,
// each candidate mapped through the rules; `root` is prefixed (with symlinks kept inside it).
Result<std::string> find_in_view(const idb::DbView& db, const oci::Process& proc, const std::vector<std::string>& env,
                                 const std::string& root) {
  const std::string& arg0 = proc.args[0];
  std::vector<std::string> candidates;
  if (arg0.find('/') != std::string::npos) {
    candidates.push_back(arg0[0] == '/' ? arg0 : proc.cwd + "/" + arg0);
  } else {
    std::string path = env_value(env, "PATH");
    if (path.empty()) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    size_t i = 0;
    while (i <= path.size()) {
      size_t j = path.find(':', i);
      if (j == std::string::npos) j = path.size();
      std::string dir = j > i ? path.substr(i, j - i) : proc.cwd;
      candidates.push_back((dir[0] == '/' ? dir : proc.cwd + "/" + dir) + "/" + arg0);
      i = j + 1;
    }
  }
  for (auto& c : candidates) {
    auto mapped = real_path(db, c);
    if (!mapped) continue;
    std::string real = root.empty() ? *mapped : ENVRUN_TRY(secure_join(root, *mapped));
    if (executable_file(real)) return real;
  }
  return Error::make(ErrorKind::Exec, "process.args[0] \"" + arg0 + "\": executable file not found through the interception rules" +
                                          (arg0.find('/') == std::string::npos ? " (PATH=" + env_value(env, "PATH") + ")" : ""));
}

// The compiled DB `bytes` (read from `path`), checked.
Result<idb::DbView> open_db(const std::string& bytes, const std::string& path) {
  idb::DbView db;
  if (const char* why = db.open(bytes.data(), bytes.size())) return Error::make(ErrorKind::System, path + ": " + why);
  return db;
}

Result<void> copy_library(const std::string& lib, const std::string& dest) {
  if (::link(lib.c_str(), dest.c_str()) == 0) return ok();
  auto bytes = ENVRUN_TRY(fs::read_file(lib));
  return fs::atomic_write(dest, bytes, 0755, /*durable=*/false);
}

// The process's side (create and exec): env rules and preload variables, the library's
// visibility, the entry point's check, and in intercept mode the real exe and cwd.
Result<InterceptPlan> plan_process(const oci::Spec& spec, const oci::Process& proc, const std::string& rootfs,
                                   const std::string& state_dir, const idb::DbView& db, bool first) {
  bool both = spec.envrun.isolation == "both";
  std::string idir = state_dir + "/" + kInterceptDirName;
  std::string lib = ENVRUN_TRY(intercept_library_path());

  InterceptPlan plan;
  plan.env = proc.env;
  apply_env_rules(plan.env, db);
  std::string seen_dir = both ? std::string(kInterceptMountPoint) : idir;
  std::string seen_lib = lib;
  if (both) {
    if (first) {
      ENVRUN_CHECK(copy_library(lib, idir + "/libenvrun-intercept.so"));
      oci::Mount m;
      m.destination = kInterceptMountPoint;
      m.type = "bind";
      m.source = idir;
      m.options = {"bind", "rw", "nosuid", "nodev"};
      plan.mounts.push_back(m);
    }
    seen_lib = seen_dir + "/libenvrun-intercept.so";
  }
  std::string preload = env_value(plan.env, "LD_PRELOAD");
  if (preload.find(seen_lib) == std::string::npos)
    env_set(plan.env, "LD_PRELOAD", preload.empty() ? seen_lib : seen_lib + ":" + preload);
  env_set(plan.env, "ENVRUN_INTERCEPT_DB", seen_dir + "/intercept.db");
  env_set(plan.env, "ENVRUN_INTERCEPT_CTL", seen_dir + "/intercept.ctl");

  // The entry point must be able to load the library: not static, not setuid/setgid.
  std::string exe = ENVRUN_TRY(find_in_view(db, proc, plan.env, both ? rootfs : ""));
  auto probe = ENVRUN_TRY(probe_executable(exe, both ? rootfs : ""));
  if (probe.is_static || probe.setid) {
    std::string why = "process.args[0] \"" + proc.args[0] + "\" (" + probe.checked + ") is a " +
                      (probe.is_static ? "statically linked" : "setuid/setgid") +
                      " binary: the interception library cannot be preloaded into it";
    if (!spec.envrun.intercept_optional)
      return Error::make(ErrorKind::Config, why + " (use a dynamically linked program, envrun.isolation: namespaces, "
                                                  "or envrun.interceptOptional: true to run it unredirected)");
    log::warn(why + "; it runs without interception (envrun.interceptOptional)");
  }
  if (!both) {
    plan.exe = exe;
    auto cwd = real_path(db, proc.cwd);
    if (!cwd || !fs::is_dir(*cwd))
      return Error::make(ErrorKind::Exec, "process.cwd " + proc.cwd + ": no such directory through the interception rules");
    plan.cwd = *cwd;
  }
  return plan;
}

}  // namespace

Result<ExecProbe> probe_executable(const std::string& path, const std::string& root) {
  ExecProbe out;
  out.checked = path;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::sys("open " + path);
  struct stat sb;
  if (::fstat(fd.get(), &sb) != 0) return Error::sys("stat " + path);
  out.setid = (sb.st_mode & (S_ISUID | S_ISGID)) != 0;
  char head[256] = {};
  ssize_t n = ::pread(fd.get(), head, sizeof head - 1, 0);
  if (n >= 2 && head[0] == '#' && head[1] == '!') {  // a script: what matters is its interpreter
    std::string line(head + 2, size_t(n - 2));
    line = line.substr(0, line.find('\n'));
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos) return out;
    std::string interp = line.substr(b, line.find_first_of(" \t", b) - b);
    std::string real = root.empty() ? interp : ENVRUN_TRY(secure_join(root, interp));
    auto inner = probe_executable(real, root);
    if (inner) inner->setid = inner->setid || out.setid;
    return inner;
  }
  if (n < EI_NIDENT || std::memcmp(head, ELFMAG, SELFMAG) != 0) return out;  // not ELF: let the kernel decide
  bool is64 = head[EI_CLASS] == ELFCLASS64;
  uint64_t phoff = is64 ? reinterpret_cast<Elf64_Ehdr*>(head)->e_phoff : reinterpret_cast<Elf32_Ehdr*>(head)->e_phoff;
  uint16_t phnum = is64 ? reinterpret_cast<Elf64_Ehdr*>(head)->e_phnum : reinterpret_cast<Elf32_Ehdr*>(head)->e_phnum;
  size_t phsz = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
  out.is_static = true;
  for (uint16_t i = 0; i < phnum && i < 256; ++i) {
    char ph[sizeof(Elf64_Phdr)];
    if (::pread(fd.get(), ph, phsz, off_t(phoff + i * phsz)) != ssize_t(phsz)) break;
    uint32_t type = is64 ? reinterpret_cast<Elf64_Phdr*>(ph)->p_type : reinterpret_cast<Elf32_Phdr*>(ph)->p_type;
    if (type == PT_INTERP) out.is_static = false;
  }
  return out;
}

Result<InterceptPlan> plan_interception(const oci::Spec& spec, const std::string& bundle, const std::string& rootfs,
                                        const std::string& id, const std::string& state_dir) {
  bool both = spec.envrun.isolation == "both";
  std::string idir = state_dir + "/" + kInterceptDirName;
  ENVRUN_CHECK(fs::mkdir_p(idir + "/upper", 0755));
  // The application may run as another user: it must reach the DB and the control page.
  if (::chmod(state_dir.c_str(), 0711) != 0 || ::chmod(idir.c_str(), 0755) != 0) return Error::sys("chmod " + idir);

  bundle::InterceptVars vars{bundle, both ? "/" : rootfs, proc::home_dir(), id, both ? kInterceptMountPoint : idir};
  std::string yaml = bundle + "/intercept.yaml";
  bundle::InterceptDb model = fs::exists(yaml) ? ENVRUN_TRY(bundle::load_intercept_yaml(yaml, vars))
                                               : bundle::default_intercept_db();
  std::string db_path = state_dir + "/" + kInterceptDbName;
  std::string db_bytes = ENVRUN_TRY(bundle::write_intercept_db(model, db_path));
  idb::DbView db = ENVRUN_TRY(open_db(db_bytes, db_path));
  ENVRUN_CHECK(create_control_page(state_dir + "/" + kInterceptCtlName, db));
  if (spec.process->user.uid != 0 && ::geteuid() == 0)
    (void)!::chown((idir + "/upper").c_str(), spec.process->user.uid, spec.process->user.gid);

  return plan_process(spec, *spec.process, rootfs, state_dir, db, /*first=*/true);
}

Result<InterceptPlan> plan_exec_interception(const oci::Spec& spec, const oci::Process& proc, const std::string& rootfs,
                                             const std::string& state_dir) {
  std::string db_path = state_dir + "/" + kInterceptDbName;
  std::string db_bytes = ENVRUN_TRY(fs::read_file(db_path));
  idb::DbView db = ENVRUN_TRY(open_db(db_bytes, db_path));
  return plan_process(spec, proc, rootfs, state_dir, db, /*first=*/false);
}

}  // namespace envrun::runtime
