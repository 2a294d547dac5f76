// Internal to bundle/: a typed reader over a JSON document that remembers where it
// is ("process.user.uid", JSON pointer "/process/user/uid") and keeps the first type
// error it meets, so that the OCI conversion in spec_from_json.cpp stays declarative.
// When the document came from YAML, a SourceMap gives each JSON pointer its line and
// column so that errors read "config.yaml:12:5: process.user.uid: expected ...".
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/spec.hpp"
#include "kernel/result.hpp"

namespace envrun::bundle::detail {

// Where a YAML node came from (1-based), and for plain scalars their source text.
struct SourcePos {
  int line = 0;
  int column = 0;
  std::optional<std::string> plain;  // e.g. "0755" for a plain scalar read as a number
};
using SourceMap = std::map<std::string, SourcePos>;  // key: JSON pointer ("" = root)

// yaml_to_json that also fills `sources` (may be null).
Result<nlohmann::json> yaml_to_json_mapped(std::string_view text, const std::string& filename,
                                           SourceMap* sources);
// YAML plain scalars read as text where the spec wants a string ("hostname: 12"):
// JSON pointer -> the text, so that the JSON can be rewritten to say "12".
using TextFixups = std::vector<std::pair<std::string, std::string>>;

// The shared JSON -> oci::Spec conversion (no semantic validation). `fixups` may be null.
Result<oci::Spec> spec_from_json(const nlohmann::json& doc, const std::string& filename,
                                 const SourceMap* sources, TextFixups* fixups = nullptr);

// "~" and "/" escaped as the JSON pointer syntax requires.
std::string pointer_token(std::string_view key);
// A double-quoted rendering for messages (never throws, unlike json::dump on bad UTF-8).
std::string quote(std::string_view s);
// The display path of an object member: "linux.sysctl" + "net.ipv4.ip_forward" ->
// "linux.sysctl[\"net.ipv4.ip_forward\"]"; plain identifiers get a dot: "process.cwd".
std::string child_path(std::string_view parent, std::string_view key);

// One position in the document. `v` is null when the field is absent or JSON null
// (the runtime-spec treats both as "not set").
struct Node {
  const nlohmann::json* v = nullptr;
  std::string path;  // "linux.namespaces[2].type"
  std::string ptr;   // "/linux/namespaces/2/type"

  explicit operator bool() const { return v != nullptr; }
  Node operator[](std::string_view key) const;  // only meaningful on an object node
  Node at(size_t index) const;                  // only meaningful on an array node
};

class Decoder {
 public:
  Decoder(std::string filename, const SourceMap* sources, TextFixups* fixups = nullptr)
      : filename_(std::move(filename)), sources_(sources), fixups_(fixups) {}

  Node root(const nlohmann::json& doc) const { return Node{&doc, "", ""}; }
  bool failed() const { return error_.has_value(); }
  Error take_error() { return std::move(*error_); }

  // Records "file[:line:col]: path: reason" unless an error is already recorded.
  void fail(const Node& at, const std::string& reason);
  // Present and an object / an array; a wrong type records an error.
  bool object(const Node& n);
  bool array(const Node& n);
  // Number of elements of a present array (0 when absent or on error).
  size_t size(const Node& n) { return array(n) ? n.v->size() : 0; }

  // Readers: return true when the field was present and well typed.
  bool read(const Node& n, std::string& out);
  bool read(const Node& n, bool& out);
  bool read(const Node& n, std::map<std::string, std::string>& out);

  template <class T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
  bool read(const Node& n, T& out) {
    if constexpr (std::is_unsigned_v<T>) {
      uint64_t u = 0;
      if (!read_unsigned(n, u, std::numeric_limits<T>::max())) return false;
      out = static_cast<T>(u);
    } else {
      int64_t s = 0;
      if (!read_signed(n, s, std::numeric_limits<T>::min(), std::numeric_limits<T>::max()))
        return false;
      out = static_cast<T>(s);
    }
    return true;
  }

  template <class T>
  bool read(const Node& n, std::optional<T>& out) {
    T value{};
    if (!read(n, value)) return false;
    out = std::move(value);
    return true;
  }

  template <class T>
  bool read(const Node& n, std::vector<T>& out) {
    if (!array(n)) return false;
    out.clear();
    for (size_t i = 0; i < n.v->size() && !failed(); ++i) {
      Node item = n.at(i);
      if (!item) fail(item, std::string("expected ") + type_name<T>() + ", got null");
      else read(item, out.emplace_back());
    }
    return !failed();
  }

  // For each element of an array of objects: out.emplace_back(), then fn(element, item).
  template <class T, class Fn>
  void each(const Node& n, std::vector<T>& out, Fn fn) {
    out.clear();
    size_t count = size(n);
    for (size_t i = 0; i < count && !failed(); ++i) {
      Node item = n.at(i);
      T& value = out.emplace_back();
      if (!item) fail(item, "expected an object, got null");
      else if (object(item)) fn(item, value);
    }
  }

 private:
  template <class T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, std::string>) return "a string";
    else if constexpr (std::is_same_v<T, bool>) return "a boolean";
    else if constexpr (std::is_unsigned_v<T>) return "an unsigned integer";
    else if constexpr (std::is_integral_v<T>) return "an integer";
    else return "a value";
  }
  bool read_unsigned(const Node& n, uint64_t& out, uint64_t max);
  bool read_signed(const Node& n, int64_t& out, int64_t min, int64_t max);
  bool expected(const Node& n, const char* what);  // records "expected <what>, got <x>"
  const SourcePos* source_of(const Node& n) const;

  std::string filename_;
  const SourceMap* sources_;
  TextFixups* fixups_;
  std::optional<Error> error_;
};

// linux.resources (spec_from_json_resources.cpp), used by spec_from_json.cpp.
void read_resources(Decoder& d, const Node& n, std::optional<oci::Resources>& out);

}  // namespace envrun::bundle::detail
