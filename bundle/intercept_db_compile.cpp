// The interception database compiler: InterceptDb (the model) -> the binary layout of
// intercept/db_format.h. Deterministic: the same model gives the same bytes.
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "bundle/intercept_db.hpp"
#include "kernel/fs.hpp"

namespace envrun::bundle {
namespace {

// Appends NUL-terminated strings, sharing equal ones.
class StringTable {
 public:
  StringTable() { data_.push_back('\0'); }  // offset 0: the empty string
  idb::Str add(const std::string& s) {
    if (s.empty()) return {0, 0};
    auto it = index_.find(s);
    if (it != index_.end()) return {it->second, uint32_t(s.size())};
    uint32_t off = uint32_t(data_.size());
    data_.insert(data_.end(), s.begin(), s.end());
    data_.push_back('\0');
    index_.emplace(s, off);
    return {off, uint32_t(s.size())};
  }
  const std::string& data() const { return data_; }

 private:
  std::string data_;
  std::unordered_map<std::string, uint32_t> index_;
};

size_t align8(size_t n) { return (n + 7) & ~size_t(7); }

template <class T>
void put(std::string& out, size_t off, const std::vector<T>& v) {
  if (!v.empty()) std::memcpy(out.data() + off, v.data(), v.size() * sizeof(T));
}

}  // namespace

const char* file_mode_name(idb::FileMode m) {
  switch (m) {
    case idb::FileMode::Merge: return "merge";
    case idb::FileMode::Override: return "override";
    case idb::FileMode::WriteCopy: return "writecopy";
    case idb::FileMode::ReadOnly: return "readonly";
    case idb::FileMode::Hide: return "hide";
  }
  return "?";
}

const std::vector<std::string>& known_interceptors() {
  static const std::vector<std::string> names = {"meter", "redirect", "net", "barrier"};
  return names;
}

InterceptDb default_intercept_db() {
  InterceptDb db;
  db.source = "(default)";
  for (auto& n : known_interceptors()) db.interceptors.push_back({n, true, {}, 0});
  return db;
}

std::string compile_intercept_db(const InterceptDb& db) {
  StringTable strings;
  idb::Header h{};
  std::memcpy(h.magic, idb::kMagic, sizeof h.magic);
  h.version = idb::kVersion;
  h.header_size = sizeof(idb::Header);
  h.source = strings.add(db.source);

  std::vector<const FileRuleSpec*> sorted;
  for (auto& f : db.files) sorted.push_back(&f);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const FileRuleSpec* a, const FileRuleSpec* b) { return a->inside < b->inside; });
  std::vector<idb::FileRule> files;
  for (auto* f : sorted) {
    idb::FileRule r{};
    r.inside = strings.add(f->inside);
    r.outside = strings.add(f->outside);
    r.upper = strings.add(f->upper);
    r.mode = uint8_t(f->mode);
    r.line = f->line;
    r.index = f->index;
    files.push_back(r);
  }
  std::vector<idb::EnvRule> env;
  for (auto& e : db.env) {
    idb::EnvRule r{};
    r.name = strings.add(e.name);
    r.value = strings.add(e.value);
    r.op = uint8_t(e.op);
    r.separator = e.separator;
    r.line = e.line;
    env.push_back(r);
  }
  std::vector<idb::NetRule> net;
  for (auto& n : db.net) {
    idb::NetRule r{};
    r.proto = uint8_t(n.proto);
    r.family = n.family;
    r.has_inside_addr = n.has_inside_addr;
    r.has_outside_addr = n.has_outside_addr;
    r.inside_port = n.inside_port;
    r.outside_port = n.outside_port;
    std::memcpy(r.inside_addr, n.inside_addr, 16);
    std::memcpy(r.outside_addr, n.outside_addr, 16);
    r.line = n.line;
    net.push_back(r);
  }
  std::vector<idb::Interceptor> chain;
  std::vector<idb::Option> options;
  for (auto& c : db.interceptors) {
    idb::Interceptor r{};
    r.name = strings.add(c.name);
    r.first_option = uint32_t(options.size());
    r.option_count = uint32_t(c.options.size());
    r.enabled = c.enabled ? 1 : 0;
    r.line = c.line;
    for (auto& [k, v] : c.options) options.push_back({strings.add(k), strings.add(v)});
    chain.push_back(r);
  }

  size_t off = align8(sizeof(idb::Header));
  auto place = [&off](idb::Section& s, size_t count, size_t elem) {
    s.off = uint32_t(off);
    s.count = uint32_t(count);
    off = align8(off + count * elem);
  };
  place(h.files, files.size(), sizeof(idb::FileRule));
  place(h.env, env.size(), sizeof(idb::EnvRule));
  place(h.net, net.size(), sizeof(idb::NetRule));
  place(h.interceptors, chain.size(), sizeof(idb::Interceptor));
  place(h.options, options.size(), sizeof(idb::Option));
  place(h.strings, strings.data().size(), 1);
  h.total_size = uint32_t(off);

  std::string out(off, '\0');
  put(out, h.files.off, files);
  put(out, h.env.off, env);
  put(out, h.net.off, net);
  put(out, h.interceptors.off, chain);
  put(out, h.options.off, options);
  std::memcpy(out.data() + h.strings.off, strings.data().data(), strings.data().size());
  h.checksum = idb::crc32(out.data() + h.header_size, out.size() - h.header_size);
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

Result<std::string> write_intercept_db(const InterceptDb& db, const std::string& path) {
  std::string bytes = compile_intercept_db(db);
  if (bytes.size() > idb::kMaxTotalSize)
    return Error::make(ErrorKind::Config, db.source + ": compiled database too large (" +
                                              std::to_string(bytes.size()) + " bytes)");
  if (db.files.size() > idb::kMaxFileRules)
    return Error::make(ErrorKind::Config, db.source + ": too many file rules (limit " +
                                              std::to_string(idb::kMaxFileRules) + ")");
  if (db.interceptors.size() > idb::kMaxInterceptors)
    return Error::make(ErrorKind::Config, db.source + ": too many interceptors");
  ENVRUN_CHECK(fs::atomic_write(path, bytes, 0644, /*durable=*/false));
  return bytes;
}

}  // namespace envrun::bundle
