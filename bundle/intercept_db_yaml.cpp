// intercept.yaml (schema version 1, documented in envrun-intercept(5)) -> InterceptDb.
// Every error is a Config error "<file>:<line>:<col>: <field path>: <reason>"; unknown keys
// are errors; variables are expanded in every string value.
#include <cstring>
#include <set>

#include "bundle/intercept_db.hpp"
#include "bundle/intercept_db_reader.hpp"
#include "kernel/fs.hpp"

namespace envrun::bundle {

namespace {

using idb_yaml::Fields;
using idb_yaml::Reader;

constexpr size_t kMaxYamlSize = 4u << 20;

std::string at(const char* list, size_t i) { return std::string(list) + "[" + std::to_string(i) + "]"; }
std::string line_note(uint32_t line) { return line ? " (line " + std::to_string(line) + ")" : ""; }


Result<idb::FileMode> parse_mode(const Reader& r, const YAML::Node& n, const std::string& field) {
  std::string s = ENVRUN_TRY(r.text(n, field));
  for (auto m : {idb::FileMode::Merge, idb::FileMode::Override, idb::FileMode::WriteCopy,
                 idb::FileMode::ReadOnly, idb::FileMode::Hide})
    if (s == file_mode_name(m)) return m;
  return r.err(n, field, idb_yaml::one_of_message("mode", s, {"merge", "override", "writecopy", "readonly", "hide"}));
}

// One `files` entry; `state` is ${STATE} for the default upper directory.
Result<FileRuleSpec> file_rule(const Reader& r, const YAML::Node& item, uint32_t i, const std::string& state) {
  std::string f = at("files", i);
  Fields k = ENVRUN_TRY(r.fields(item, f, {"inside", "outside", "mode", "upper"}));
  FileRuleSpec rule;
  rule.line = Reader::line_of(item);
  rule.index = i;
  if (!k.count("inside")) return r.err(item, f + ".inside", "required");
  rule.inside = ENVRUN_TRY(r.abs_path(k.at("inside"), f + ".inside"));
  if (k.count("mode")) rule.mode = ENVRUN_TRY(parse_mode(r, k.at("mode"), f + ".mode"));
  bool hide = rule.mode == idb::FileMode::Hide, writecopy = rule.mode == idb::FileMode::WriteCopy;
  if (k.count("outside")) {
    if (hide) return r.err(k.at("outside"), f + ".outside", "a hide rule has no outside (nothing exists there)");
    rule.outside = ENVRUN_TRY(r.abs_path(k.at("outside"), f + ".outside"));
  } else if (!hide && !writecopy) {
    return r.err(item, f + ".outside", std::string("required for mode ") + file_mode_name(rule.mode));
  }
  if (k.count("upper")) {
    if (!writecopy) return r.err(k.at("upper"), f + ".upper", "only writecopy rules have an upper directory");
    rule.upper = ENVRUN_TRY(r.abs_path(k.at("upper"), f + ".upper"));
  } else if (writecopy) {
    std::string def = "${STATE}/upper/" + std::to_string(i);
    if (state.empty() || state[0] != '/')
      return r.err(item, f + ".upper", "the default " + def + " needs an absolute ${STATE}, which is " +
                                           (state.empty() ? "empty here" : "\"" + state + "\"") + " (give upper:)");
    rule.upper = fs::normalize(state + "/upper/" + std::to_string(i));
  }
  return rule;
}

Result<void> parse_files(const Reader& r, const YAML::Node& list, const std::string& state, InterceptDb& db) {
  size_t n = ENVRUN_TRY(r.sequence(list, "files"));
  if (n > idb::kMaxFileRules)
    return r.err(list, "files", std::to_string(n) + " rules, at most " + std::to_string(idb::kMaxFileRules));
  std::map<std::string, const FileRuleSpec*> seen_inside, seen_upper;
  db.files.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    db.files.push_back(ENVRUN_TRY(file_rule(r, list[i], uint32_t(i), state)));
    const FileRuleSpec& rule = db.files.back();
    if (auto [it, fresh] = seen_inside.emplace(rule.inside, &rule); !fresh)
      return r.err(list[i], at("files", i) + ".inside", "\"" + rule.inside + "\" is also the inside of " +
                                                            at("files", it->second->index) + line_note(it->second->line));
    if (rule.upper.empty()) continue;
    if (auto [it, fresh] = seen_upper.emplace(rule.upper, &rule); !fresh)
      return r.err(list[i], at("files", i) + ".upper", "\"" + rule.upper + "\" is also the upper of " +
                                                           at("files", it->second->index) + line_note(it->second->line));
  }
  return ok();
}

Result<EnvRuleSpec> env_rule(const Reader& r, const YAML::Node& item, size_t i) {
  std::string f = at("env", i);
  Fields k = ENVRUN_TRY(r.fields(item, f, {"set", "unset", "prepend", "append", "value", "separator"}));
  EnvRuleSpec rule;
  rule.line = Reader::line_of(item);
  std::string op;
  for (auto [name, code] : {std::pair{"set", idb::EnvOp::Set}, {"unset", idb::EnvOp::Unset},
                            {"prepend", idb::EnvOp::Prepend}, {"append", idb::EnvOp::Append}}) {
    if (!k.count(name)) continue;
    if (!op.empty()) return r.err(k.at(name), f + "." + name, "only one of set, unset, prepend, append per entry (" + op + " is given too)");
    op = name;
    rule.op = code;
  }
  if (op.empty()) return r.err(item, f, "one of set, unset, prepend, append is required");
  rule.name = ENVRUN_TRY(r.text(k.at(op), f + "." + op));
  if (rule.name.empty() || rule.name.find('=') != std::string::npos || rule.name.find('\0') != std::string::npos)
    return r.err(k.at(op), f + "." + op, "\"" + rule.name + "\" is not a variable name (empty, or contains '=')");
  if (rule.op == idb::EnvOp::Unset) {
    if (k.count("value")) return r.err(k.at("value"), f + ".value", "unset takes no value");
  } else if (!k.count("value")) {
    return r.err(item, f + ".value", "required for " + op);
  } else {
    rule.value = ENVRUN_TRY(r.text(k.at("value"), f + ".value"));
  }
  if (k.count("separator")) {
    if (rule.op != idb::EnvOp::Prepend && rule.op != idb::EnvOp::Append)
      return r.err(k.at("separator"), f + ".separator", "only prepend and append take a separator");
    std::string sep = ENVRUN_TRY(r.text(k.at("separator"), f + ".separator"));
    if (sep.size() != 1 || sep[0] == '\0')
      return r.err(k.at("separator"), f + ".separator", "\"" + sep + "\" is not one character");
    rule.separator = sep[0];
  }
  return rule;
}

Result<idb_yaml::Endpoint> endpoint(const Reader& r, const YAML::Node& n, const std::string& field) {
  std::string s = ENVRUN_TRY(r.text(n, field));
  auto ep = idb_yaml::parse_endpoint(s);
  if (!ep) return r.err(n, field, ep.error().message);
  return *ep;
}

Result<NetRuleSpec> net_rule(const Reader& r, const YAML::Node& item, size_t i) {
  std::string f = at("network", i);
  Fields k = ENVRUN_TRY(r.fields(item, f, {"inside", "outside", "protocol"}));
  NetRuleSpec rule;
  rule.line = Reader::line_of(item);
  for (const char* need : {"inside", "outside"})
    if (!k.count(need)) return r.err(item, f + "." + need, "required");
  auto in = ENVRUN_TRY(endpoint(r, k.at("inside"), f + ".inside"));
  auto out = ENVRUN_TRY(endpoint(r, k.at("outside"), f + ".outside"));
  if (in.family && out.family && in.family != out.family)
    return r.err(k.at("outside"), f + ".outside", "IPv" + std::to_string(out.family) +
                                                      " address for an IPv" + std::to_string(in.family) + " inside address");
  rule.family = in.family ? in.family : out.family;
  rule.has_inside_addr = in.family != 0;
  rule.has_outside_addr = out.family != 0;
  std::memcpy(rule.inside_addr, in.addr, sizeof in.addr);
  std::memcpy(rule.outside_addr, out.addr, sizeof out.addr);
  rule.inside_port = in.port;
  rule.outside_port = out.port;
  if (k.count("protocol")) {
    std::string p = ENVRUN_TRY(r.text(k.at("protocol"), f + ".protocol"));
    if (p == "tcp") rule.proto = idb::NetProto::Tcp;
    else if (p == "udp") rule.proto = idb::NetProto::Udp;
    else if (p != "any") return r.err(k.at("protocol"), f + ".protocol", idb_yaml::one_of_message("protocol", p, {"tcp", "udp", "any"}));
  }
  return rule;
}

bool same_inside(const NetRuleSpec& a, const NetRuleSpec& b) {
  bool protos = a.proto == b.proto || a.proto == idb::NetProto::Any || b.proto == idb::NetProto::Any;
  return protos && a.inside_port == b.inside_port && a.has_inside_addr == b.has_inside_addr &&
         (!a.has_inside_addr || (a.family == b.family && std::memcmp(a.inside_addr, b.inside_addr, 16) == 0));
}

Result<void> parse_network(const Reader& r, const YAML::Node& list, InterceptDb& db) {
  size_t n = ENVRUN_TRY(r.sequence(list, "network"));
  for (size_t i = 0; i < n; ++i) {
    NetRuleSpec rule = ENVRUN_TRY(net_rule(r, list[i], i));
    for (size_t j = 0; j < db.net.size(); ++j)
      if (same_inside(db.net[j], rule))
        return r.err(list[i], at("network", i) + ".inside", "same inside endpoint as " + at("network", j) + line_note(db.net[j].line));
    db.net.push_back(rule);
  }
  return ok();
}

Result<void> parse_env(const Reader& r, const YAML::Node& list, InterceptDb& db) {
  size_t n = ENVRUN_TRY(r.sequence(list, "env"));
  for (size_t i = 0; i < n; ++i) db.env.push_back(ENVRUN_TRY(env_rule(r, list[i], i)));
  return ok();
}

Result<int> parse_version(const Reader& r, const YAML::Node& doc) {
  if (doc.IsMap())
    for (const auto& kv : doc) {
      if (!kv.first.IsScalar() || kv.first.Scalar() != "version") continue;
      const YAML::Node& v = kv.second;
      std::string s = ENVRUN_TRY(r.raw(v, "version"));
      if (v.Tag() != "?" || s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
        return r.err(v, "version", "expected an integer, got \"" + s + "\"");
      int version = std::stoi(s);
      if (version != 1) return r.err(v, "version", "unsupported version " + s + " (this envrun reads 1)");
      return version;
    }
  return r.err(doc.IsMap() ? doc.Mark() : YAML::Mark(), "version", "required (this envrun reads 1)");
}

Result<InterceptDb> parse_document(const Reader& r, const YAML::Node& doc, const InterceptVars& vars) {
  InterceptDb db;
  db.source = r.source();
  db.version = ENVRUN_TRY(parse_version(r, doc));
  Fields top = ENVRUN_TRY(r.fields(doc, "", {"version", "files", "env", "network", "interceptors"}));
  if (top.count("files")) ENVRUN_CHECK(parse_files(r, top.at("files"), vars.state, db));
  if (top.count("env")) ENVRUN_CHECK(parse_env(r, top.at("env"), db));
  if (top.count("network")) ENVRUN_CHECK(parse_network(r, top.at("network"), db));
  if (top.count("interceptors")) ENVRUN_CHECK(idb_yaml::parse_chain(r, top.at("interceptors"), db));
  else db.interceptors = default_intercept_db().interceptors;
  return db;
}

}  // namespace

Result<InterceptDb> parse_intercept_yaml(const std::string& text, const std::string& source,
                                         const InterceptVars& vars) {
  Reader r(source, vars);
  if (text.size() > kMaxYamlSize)
    return Error::make(ErrorKind::Config, source + ": " + std::to_string(text.size()) +
                                              " bytes, larger than the " + std::to_string(kMaxYamlSize) + " bytes allowed");
  try {
    YAML::Node doc = YAML::Load(text);
    return parse_document(r, doc, vars);
  } catch (const YAML::Exception& e) {
    return r.err(e.mark, "", e.msg);
  } catch (const std::exception& e) {
    return Error::make(ErrorKind::Config, source + ": " + e.what());
  }
}

Result<InterceptDb> load_intercept_yaml(const std::string& path, const InterceptVars& vars) {
  auto text = fs::read_file(path);
  if (!text) return Error::make(ErrorKind::Config, path + ": cannot read: " + std::strerror(text.error().sys_errno));
  return parse_intercept_yaml(*text, path, vars);
}

}  // namespace envrun::bundle
