// Internal to bundle/: reading intercept.yaml nodes with errors that point into the file
// ("<file>:<line>:<col>: <field path>: <reason>"), and the value parsers the schema needs
// (variables, endpoints). Used by intercept_db_yaml.cpp and its unit test.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "bundle/intercept_db.hpp"
#include "kernel/result.hpp"

namespace envrun::bundle::idb_yaml {

// Expand ${BUNDLE} ${ROOTFS} ${HOME} ${ID} ${STATE}; "$$" is a literal '$'. An unknown
// variable, a '$' not followed by '{' or '$', or an empty value for a used variable is a
// Config error whose message is only the reason (the caller adds the location).
Result<std::string> expand_vars(std::string_view text, const InterceptVars& vars);

// "PORT", "ADDR:PORT" (IPv4) or "[ADDR]:PORT" (IPv6); port 1..65535.
struct Endpoint {
  uint8_t family = 0;  // 0 (no address), 4, 6
  uint8_t addr[16] = {};
  uint16_t port = 0;
};
Result<Endpoint> parse_endpoint(std::string_view text);  // reason-only errors, as above

// The keys of one mapping, checked: scalars, known, not duplicated.
using Fields = std::map<std::string, YAML::Node>;

class Reader {
 public:
  Reader(const std::string& source, const InterceptVars& vars) : source_(source), vars_(vars) {}

  const std::string& source() const { return source_; }
  // "<source>:<line>:<col>: <field>: <reason>" (position omitted when yaml-cpp has none).
  Error err(const YAML::Mark& at, const std::string& field, const std::string& reason) const;
  Error err(const YAML::Node& at, const std::string& field, const std::string& reason) const {
    return err(at.Mark(), field, reason);
  }
  static uint32_t line_of(const YAML::Node& n) { return n.Mark().is_null() ? 0 : uint32_t(n.Mark().line + 1); }

  // `node` must be a mapping whose keys are among `known`.
  Result<Fields> fields(const YAML::Node& node, const std::string& field,
                        std::initializer_list<const char*> known) const;
  // A scalar as written (no variables).
  Result<std::string> raw(const YAML::Node& n, const std::string& field) const;
  // A scalar with its variables expanded.
  Result<std::string> text(const YAML::Node& n, const std::string& field) const;
  // text() that must be an absolute path; returned lexically normalized.
  Result<std::string> abs_path(const YAML::Node& n, const std::string& field) const;
  // A plain true/false.
  Result<bool> boolean(const YAML::Node& n, const std::string& field) const;
  // A sequence (null counts as empty); returns its length.
  Result<size_t> sequence(const YAML::Node& n, const std::string& field) const;

 private:
  const std::string& source_;
  const InterceptVars& vars_;
};

// A member of `set` or an error listing them: unknown mode "copy" (merge, override, ...).
std::string one_of_message(const std::string& what, const std::string& got,
                           std::initializer_list<const char*> set);

// The `interceptors` list into db.interceptors (intercept_db_chain.cpp).
Result<void> parse_chain(const Reader& r, const YAML::Node& list, InterceptDb& db);

}  // namespace envrun::bundle::idb_yaml
