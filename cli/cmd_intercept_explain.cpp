// envrun intercept explain ID_OR_BUNDLE PATH [--op OP]: which file rule resolves PATH and
// where the call would go, per the rule's mode (intercept/README.md, "Path resolution").
// Lexical: the path is normalized, symlinks are not followed; only the existence of the
// candidate paths (lstat) decides between layers, as the library does.
#include <sys/stat.h>

#include <cstdio>

#include "cli/cli.hpp"
#include "cli/intercept_source.hpp"
#include "intercept/db_view.hpp"
#include "kernel/fs.hpp"
#include "runtime/intercept_control.hpp"

namespace envrun::cli {

namespace {

struct LoadedDb {
  std::string bytes;
  std::string where;    // "container web1 (<path>)" or "(from <yaml>)"
  std::string fs_root;  // prefix for existence checks: /proc/<pid>/root of a live container
  int redirect_live = -1;  // container: live state of `redirect` (-1 unknown)
};

Result<LoadedDb> load_container_db(const runtime::StateStore& store, const std::string& id) {
  LoadedDb out;
  auto st = ENVRUN_TRY(store.load(id));
  std::string path = store.dir(id) + "/" + runtime::kInterceptDbName;
  if (!fs::exists(path))
    return Error::make(ErrorKind::State, "container \"" + id + "\" runs without the interception library (isolation: namespaces): nothing is redirected");
  out.bytes = ENVRUN_TRY(fs::read_file(path));
  out.where = "container " + id + " (" + path + ")";
  if (st.pid > 0 && store.status(st) != runtime::Status::Stopped) out.fs_root = "/proc/" + std::to_string(st.pid) + "/root";
  if (auto chain = runtime::intercept_chain(store, id))
    for (const auto& c : *chain)
      if (c.name == "redirect") out.redirect_live = c.enabled;
  return out;
}

Result<LoadedDb> load_db(const Globals& g, InterceptSource src) {
  auto store = g.store();
  if (runtime::StateStore::validate_id(src.arg) && fs::is_dir(store.dir(src.arg))) return load_container_db(store, src.arg);
  src.root = g.root;
  if (!fs::exists(src.arg))
    return Error::make(ErrorKind::NotFound, src.arg + ": no such container in " + g.root + ", bundle directory or intercept.yaml");
  InterceptModel m = ENVRUN_TRY(load_intercept_model(src));
  LoadedDb out;
  out.bytes = ENVRUN_TRY(compile_intercept_model(m));
  out.where = m.yaml.empty() ? m.vars.bundle + " (no intercept.yaml: default database)" : m.yaml + " (compiled in memory)";
  return out;
}


// Prints the resolution of one normalized path under one rule.
class Explainer {
 public:
  Explainer(const idb::DbView& v, const idb::FileRule& r, const std::string& path, const std::string& op,
            const std::string& fs_root)
      : v_(v), r_(r), path_(path), op_(op), fs_root_(fs_root) {
    rest_ = r.inside.len == 1 ? (path == "/" ? "" : path) : path.substr(r.inside.len);
    modifies_ = op == "write" || op == "create" || op == "remove";
  }

  void run() {
    std::printf("rule: files[%u] (%s line %u): inside %s, mode %s\n", r_.index, v_.str(v_.header().source), r_.line,
                v_.str(r_.inside), bundle::file_mode_name(idb::FileMode(r_.mode)));
    switch (idb::FileMode(r_.mode)) {
      case idb::FileMode::Override: simple(false); break;
      case idb::FileMode::ReadOnly: simple(true); break;
      case idb::FileMode::Hide: result("fails with ENOENT (the rule hides everything below " + std::string(v_.str(r_.inside)) + ")", ""); break;
      case idb::FileMode::Merge: merge(); break;
      case idb::FileMode::WriteCopy: writecopy(); break;
    }
  }

 private:
  std::string under(const char* base) const {
    std::string b = base;
    return rest_.empty() ? b : b == "/" ? rest_ : b + rest_;
  }
  bool exists(const std::string& p) const {
    struct stat sb;
    return ::lstat((fs_root_ + p).c_str(), &sb) == 0;
  }
  void show(const char* label, const std::string& p) const {
    std::printf("%s: %s (%s)\n", label, p.c_str(), exists(p) ? "exists" : "does not exist");
  }
  // The op line; `target` (may be empty) is checked for existence unless the op creates it.
  void result(const std::string& what, const std::string& target) const {
    std::printf("%s: %s\n", op_.c_str(), what.c_str());
    if (!target.empty() && op_ != "create" && !exists(target))
      std::printf("note: %s does not exist there: the call fails with ENOENT\n", target.c_str());
  }

  void simple(bool readonly) {
    std::string out = under(v_.str(r_.outside));
    show("outside", out);
    if (readonly && modifies_) result("fails with EROFS (readonly rule; reads go to " + out + ")", "");
    else result(out, out);
  }

  void merge() {
    std::string out = under(v_.str(r_.outside));
    show("outside", out);
    show("host", path_);
    if (op_ == "list") return result("the union of " + out + " and " + path_ + " (outside first)", "");
    if (exists(out)) return result(out + " (found in outside)", out);
    if (exists(path_)) return result(path_ + " (not in outside: the host path)", path_);
    if (op_ == "create") return result(out + " (new files are created in outside, missing parent directories too)", out);
    result("fails with ENOENT (in neither outside nor the host)", "");
  }

  // The whiteout that hides the path: upper/<dir>/.wh.<name> for any component of rest.
  std::string whiteout(const std::string& upper) const {
    for (size_t slash = 0; slash < rest_.size(); slash = rest_.find('/', slash + 1)) {
      size_t end = rest_.find('/', slash + 1);
      std::string dir = rest_.substr(0, slash), name = rest_.substr(slash + 1, end == std::string::npos ? end : end - slash - 1);
      std::string wh = (dir.empty() ? upper : upper + dir) + "/.wh." + name;
      if (exists(wh)) return wh;
      if (end == std::string::npos) break;
    }
    return "";
  }

  void writecopy() {
    std::string up = under(v_.str(r_.upper));
    std::string low = r_.outside.len ? under(v_.str(r_.outside)) : path_;
    show("upper", up);
    show(r_.outside.len ? "lower" : "lower (host)", low);
    std::string wh = exists(up) ? "" : whiteout(v_.str(r_.upper));
    if (!wh.empty()) std::printf("whiteout: %s (the name does not exist)\n", wh.c_str());
    if (op_ == "list") return result("the union of " + up + " and " + low + " (upper first; whiteouts and .wh.* names hidden)", "");
    if (op_ == "create") return result(up + " (created in upper; parent directories are copied up first)", "");
    if (exists(up) && op_ == "remove")
      return result(up + " is removed" + (exists(low) ? "; a whiteout then hides " + low : ""), up);
    if (exists(up)) return result(up + " (found in upper)", up);
    if (!wh.empty()) return result("fails with ENOENT (whiteout " + wh + ")", "");
    if (!exists(low)) return result("fails with ENOENT (in neither upper nor lower)", "");
    if (op_ == "write") return result(low + " is copied up to " + up + " (with its parent directories), then written there", low);
    if (op_ == "remove") return result("a whiteout is created in upper; " + low + " stays untouched", low);
    result(low + " (not copied up: the lower path)", low);
  }

  const idb::DbView& v_;
  const idb::FileRule& r_;
  std::string path_, op_, fs_root_, rest_;
  bool modifies_ = false;
};

Result<int> explain(const Globals& g, const InterceptSource& src, const std::string& raw, const std::string& op) {
  if (raw.empty() || raw[0] != '/') return Error::make(ErrorKind::Usage, "\"" + raw + "\": give the absolute path the application uses");
  LoadedDb db = ENVRUN_TRY(load_db(g, src));
  idb::DbView v;
  if (const char* why = v.open(db.bytes.data(), db.bytes.size())) return Error::make(ErrorKind::Config, db.where + ": " + why);
  std::string path = fs::normalize(raw);
  std::printf("database: %s\n", db.where.c_str());
  std::printf("path: %s%s\n", path.c_str(), path == raw ? "" : (" (normalized from " + raw + ")").c_str());
  int redirect = v.interceptor_index("redirect");
  if (redirect < 0) std::printf("note: the chain has no redirect interceptor: no path is redirected\n");
  else if (db.redirect_live == 0 || (db.redirect_live < 0 && !v.interceptors()[redirect].enabled))
    std::printf("note: the redirect interceptor is off: the rules below apply once it is enabled\n");
  const idb::FileRule* r = v.match(path.data(), path.size());
  if (!r) {
    std::printf("no rule: %s is not redirected\n", path.c_str());
    return 0;
  }
  Explainer(v, *r, path, op, db.fs_root).run();
  std::printf("note: resolved lexically (symlinks are not followed here; the library walks them beneath the rule's root)%s\n",
              db.fs_root.empty() ? "" : (", existence checked in " + db.fs_root).c_str());
  return 0;
}

}  // namespace

void add_intercept_explain(CLI::App& parent, Globals& g) {
  static InterceptSource src;
  static std::string path, op = "read";
  auto* sub = parent.add_subcommand("explain", "show which file rule resolves PATH and where a call on it goes");
  sub->add_option("id_or_bundle", src.arg, "container id (in --root), bundle directory or intercept.yaml")->required();
  sub->add_option("path", path, "absolute path, as the application names it")->required();
  sub->add_option("--op", op, "the operation")
      ->check(CLI::IsMember({"read", "stat", "exec", "list", "write", "create", "remove"}))
      ->capture_default_str();
  sub->add_option("--id", src.id, "value of ${ID} when compiling a bundle")->capture_default_str();
  sub->add_option("--state", src.state_override, "value of ${STATE} when compiling a bundle");
  on_run(sub, g, "intercept explain", nullptr, [&g]() -> Result<int> { return explain(g, src, path, op); });
}

}  // namespace envrun::cli
