// The typed JSON reader behind the OCI conversion: field paths, type errors, and
// YAML line:column lookups (see spec_decode.hpp).
#include "bundle/spec_decode.hpp"

#include <cctype>
#include <cstdio>

namespace envrun::bundle::detail {

using nlohmann::json;

std::string pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

static bool plain_identifier(std::string_view key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
  for (char c : key)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

std::string child_path(std::string_view parent, std::string_view key) {
  if (!plain_identifier(key)) return std::string(parent) + "[" + quote(key) + "]";
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

Node Node::operator[](std::string_view key) const {
  Node child;
  if (v && v->is_object()) {
    auto it = v->find(key);
    if (it != v->end() && !it->is_null()) child.v = &*it;
  }
  child.path = child_path(path, key);
  child.ptr = ptr + "/" + pointer_token(key);
  return child;
}

Node Node::at(size_t index) const {
  Node child;
  if (v && v->is_array() && index < v->size() && !(*v)[index].is_null()) child.v = &(*v)[index];
  child.path = path + "[" + std::to_string(index) + "]";
  child.ptr = ptr + "/" + std::to_string(index);
  return child;
}

const SourcePos* Decoder::source_of(const Node& n) const {
  if (!sources_) return nullptr;
  std::string ptr = n.ptr;
  while (true) {
    auto it = sources_->find(ptr);
    if (it != sources_->end()) return &it->second;
    if (ptr.empty()) return nullptr;
    ptr.erase(ptr.rfind('/'));
  }
}

void Decoder::fail(const Node& at, const std::string& reason) {
  if (error_) return;
  std::string msg = filename_;
  if (const SourcePos* pos = source_of(at))
    msg += ":" + std::to_string(pos->line) + ":" + std::to_string(pos->column);
  msg += ": ";
  if (!at.path.empty()) msg += at.path + ": ";
  msg += reason;
  error_ = Error::make(ErrorKind::Config, std::move(msg));
}

static std::string describe(const json& v) {
  if (v.is_number()) return v.dump();
  return v.type_name();
}

bool Decoder::expected(const Node& n, const char* what) {
  fail(n, std::string("expected ") + what + ", got " + describe(*n.v));
  return false;
}

bool Decoder::object(const Node& n) {
  if (!n || failed()) return false;
  return n.v->is_object() || expected(n, "an object");
}

bool Decoder::array(const Node& n) {
  if (!n || failed()) return false;
  return n.v->is_array() || expected(n, "an array");
}

bool Decoder::read(const Node& n, std::string& out) {
  if (!n || failed()) return false;
  if (n.v->is_string()) {
    out = n.v->get<std::string>();
    return true;
  }
  // YAML: a plain scalar that looked like a number or boolean is still text here.
  if (sources_) {
    auto it = sources_->find(n.ptr);
    if (it != sources_->end() && it->second.plain) {
      out = *it->second.plain;
      if (fixups_) fixups_->emplace_back(n.ptr, out);
      return true;
    }
  }
  return expected(n, "a string");
}

bool Decoder::read(const Node& n, bool& out) {
  if (!n || failed()) return false;
  if (!n.v->is_boolean()) return expected(n, "a boolean (true or false)");
  out = n.v->get<bool>();
  return true;
}

bool Decoder::read(const Node& n, std::map<std::string, std::string>& out) {
  if (!object(n)) return false;
  out.clear();
  for (auto& [key, value] : n.v->items()) {
    Node item = n[key];
    if (!item) fail(item, "expected a string, got null");
    else read(item, out[key]);
    if (failed()) return false;
  }
  return true;
}

bool Decoder::read_unsigned(const Node& n, uint64_t& out, uint64_t max) {
  if (!n || failed()) return false;
  if (n.v->is_number_unsigned()) {
    out = n.v->get<uint64_t>();
  } else if (n.v->is_number_integer() && n.v->get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(n.v->get<int64_t>());
  } else {
    return expected(n, "an unsigned integer");
  }
  if (out > max) {
    fail(n, "expected an unsigned integer at most " + std::to_string(max) + ", got " +
                std::to_string(out));
    return false;
  }
  return true;
}

bool Decoder::read_signed(const Node& n, int64_t& out, int64_t min, int64_t max) {
  if (!n || failed()) return false;
  if (n.v->is_number_unsigned()) {
    uint64_t u = n.v->get<uint64_t>();
    if (u > static_cast<uint64_t>(max)) {
      fail(n, "expected an integer at most " + std::to_string(max) + ", got " + std::to_string(u));
      return false;
    }
    out = static_cast<int64_t>(u);
  } else if (n.v->is_number_integer()) {
    out = n.v->get<int64_t>();
  } else {
    return expected(n, "an integer");
  }
  if (out < min || out > max) {
    fail(n, "expected an integer between " + std::to_string(min) + " and " + std::to_string(max) +
                ", got " + std::to_string(out));
    return false;
  }
  return true;
}

}  // namespace envrun::bundle::detail
