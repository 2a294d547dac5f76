// The interception database of a bundle: intercept.yaml (schema in envrun-intercept(5)),
// its in-memory model, and its compiler to the binary form of intercept/db_format.h.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "intercept/db_format.h"
#include "kernel/result.hpp"

namespace envrun::bundle {

// Values of ${BUNDLE} ${ROOTFS} ${HOME} ${ID} ${STATE} used when expanding paths.
struct InterceptVars {
  std::string bundle;  // absolute bundle directory
  std::string rootfs;  // absolute rootfs directory
  std::string home;    // the invoking user's $HOME
  std::string id;      // container id
  std::string state;   // the container's state directory
};

struct FileRuleSpec {
  std::string inside;   // absolute, normalized
  std::string outside;  // absolute, normalized ("" for hide)
  std::string upper;    // writecopy: absolute; default ${STATE}/upper/<n>
  idb::FileMode mode = idb::FileMode::Override;
  uint32_t line = 0;
  uint32_t index = 0;
};

struct EnvRuleSpec {
  std::string name, value;
  idb::EnvOp op = idb::EnvOp::Set;
  char separator = ':';
  uint32_t line = 0;
};

struct NetRuleSpec {
  idb::NetProto proto = idb::NetProto::Any;
  uint8_t family = 0;  // 0 any, 4, 6
  bool has_inside_addr = false, has_outside_addr = false;
  uint8_t inside_addr[16] = {}, outside_addr[16] = {};
  uint16_t inside_port = 0, outside_port = 0;
  uint32_t line = 0;
};

struct InterceptorSpec {
  std::string name;
  bool enabled = true;
  std::vector<std::pair<std::string, std::string>> options;  // yaml order
  uint32_t line = 0;
};

struct InterceptDb {
  int version = 1;
  std::string source;  // path of the yaml (messages, explain)
  std::vector<FileRuleSpec> files;  // yaml order
  std::vector<EnvRuleSpec> env;
  std::vector<NetRuleSpec> net;
  std::vector<InterceptorSpec> interceptors;  // chain order
};

// "merge", "override", "writecopy", "readonly", "hide" ("?" for anything else).
const char* file_mode_name(idb::FileMode m);

// Whether `interceptor` understands option `key` with `value` (the same table intercept.yaml
// is checked against). A Usage error naming the known options / values otherwise.
Result<void> check_interceptor_option(const std::string& interceptor, const std::string& key,
                                      const std::string& value);

// Names of the interceptors the library provides, in their default chain order.
const std::vector<std::string>& known_interceptors();

// Parse and validate intercept.yaml. Errors are Config errors of the form
// "<file>:<line>:<col>: <field path>: <reason>".
Result<InterceptDb> load_intercept_yaml(const std::string& path, const InterceptVars& vars);
Result<InterceptDb> parse_intercept_yaml(const std::string& text, const std::string& source,
                                         const InterceptVars& vars);
// The database used when a bundle has no intercept.yaml: no rules, the default chain.
InterceptDb default_intercept_db();

// Binary form (db_format.h): sorted file rules, checksummed. Deterministic.
std::string compile_intercept_db(const InterceptDb& db);
// Write the compiled form to `path` atomically (temp file + rename), mode 0644; returns
// the bytes written.
Result<std::string> write_intercept_db(const InterceptDb& db, const std::string& path);

}  // namespace envrun::bundle
