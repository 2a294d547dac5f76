// envrun-mkdb: build an interception DB for the library's tests from a line format (the
// YAML front end is `envrun intercept compile`; this keeps the tests independent of it).
//   file MODE INSIDE [OUTSIDE [UPPER]]   MODE: merge|override|writecopy|readonly|hide
//   off NAME                             interceptor NAME starts disabled
//   # comment
// Usage: envrun-mkdb OUT.db [SPEC]   (SPEC defaults to stdin). Exit 1 with a message naming
// the line on bad input.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "bundle/intercept_db.hpp"

namespace {

using envrun::idb::FileMode;

bool mode_of(const std::string& s, FileMode* m) {
  static const std::pair<const char*, FileMode> names[] = {
      {"merge", FileMode::Merge}, {"override", FileMode::Override}, {"writecopy", FileMode::WriteCopy},
      {"readonly", FileMode::ReadOnly}, {"hide", FileMode::Hide}};
  for (auto& [n, v] : names)
    if (s == n) {
      *m = v;
      return true;
    }
  return false;
}

int parse(std::istream& in, const std::string& src, envrun::bundle::InterceptDb& db) {
  std::string line;
  for (uint32_t no = 1; std::getline(in, line); ++no) {
    std::istringstream ls(line);
    std::string kw;
    if (!(ls >> kw) || kw[0] == '#') continue;
    auto bad = [&](const std::string& why) {
      std::cerr << "envrun-mkdb: " << src << ":" << no << ": " << why << "\n";
      return 1;
    };
    if (kw == "off") {
      std::string name;
      ls >> name;
      bool found = false;
      for (auto& c : db.interceptors)
        if (c.name == name) c.enabled = false, found = true;
      if (!found) return bad("no interceptor named '" + name + "'");
      continue;
    }
    if (kw != "file") return bad("unknown keyword '" + kw + "' (file, off)");
    std::string mode;
    envrun::bundle::FileRuleSpec r;
    ls >> mode >> r.inside >> r.outside >> r.upper;
    if (!mode_of(mode, &r.mode)) return bad("unknown mode '" + mode + "'");
    if (r.inside.empty() || r.inside[0] != '/') return bad("inside path must be absolute");
    if (r.mode != FileMode::Hide && r.mode != FileMode::WriteCopy && r.outside.empty())
      return bad("mode " + mode + " needs an outside path");
    if (r.mode == FileMode::WriteCopy && r.upper.empty()) {
      if (r.outside.empty()) return bad("writecopy needs OUTSIDE UPPER (OUTSIDE '-' for the host path)");
      return bad("writecopy needs an upper directory");
    }
    if (r.outside == "-") r.outside.clear();
    r.line = no;
    r.index = uint32_t(db.files.size());
    db.files.push_back(r);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: envrun-mkdb OUT.db [SPEC]\n";
    return 2;
  }
  auto db = envrun::bundle::default_intercept_db();
  db.source = argc == 3 ? argv[2] : "(stdin)";
  int rc;
  if (argc == 3) {
    std::ifstream f(argv[2]);
    if (!f) {
      std::cerr << "envrun-mkdb: " << argv[2] << ": cannot read\n";
      return 1;
    }
    rc = parse(f, argv[2], db);
  } else {
    rc = parse(std::cin, "(stdin)", db);
  }
  if (rc != 0) return rc;
  auto w = envrun::bundle::write_intercept_db(db, argv[1]);
  if (!w) {
    std::cerr << "envrun-mkdb: " << w.error().message << "\n";
    return 1;
  }
  return 0;
}
