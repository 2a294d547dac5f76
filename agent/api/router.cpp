// Router::dispatch and the body field helpers.
#include "agent/api/router.hpp"

#include "runtime/state.hpp"

namespace envrun::agent::api {

namespace {

std::vector<std::string> split_path(const std::string& p) {
  std::vector<std::string> out;
  size_t pos = 1;
  while (pos <= p.size()) {
    size_t slash = p.find('/', pos);
    if (slash == std::string::npos) slash = p.size();
    out.push_back(p.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

// Whether `path` fits `pattern`; the {param} segments are appended to params.
bool match(const std::string& pattern, const std::vector<std::string>& segs, std::vector<std::string>& params) {
  auto pat = split_path(pattern);
  if (pat.size() != segs.size()) return false;
  std::vector<std::string> got;
  for (size_t i = 0; i < pat.size(); ++i) {
    if (pat[i].size() > 2 && pat[i].front() == '{') got.push_back(segs[i]);
    else if (pat[i] != segs[i]) return false;
  }
  params = std::move(got);
  return true;
}

std::string param_name(const std::string& pattern, size_t n) {
  size_t pos = 0;
  for (size_t i = 0;; ++i) {
    size_t open = pattern.find('{', pos), close = pattern.find('}', open);
    if (open == std::string::npos || close == std::string::npos) return "parameter";
    if (i == n) return pattern.substr(open + 1, close - open - 1);
    pos = close;
  }
}

Reply parse_body(Call& c) {
  if (c.body.empty()) return {};
  json j = json::parse(c.body, nullptr, false);
  if (j.is_discarded()) {
    try {
      (void)json::parse(c.body);
    } catch (const json::parse_error& e) {
      return error_reply(400, "body: malformed JSON at byte " + std::to_string(e.byte) + ": " + e.what());
    }
    return error_reply(400, "body: malformed JSON");
  }
  if (!j.is_object()) return error_reply(400, "body: want a JSON object, got " + std::string(j.type_name()));
  c.body_json = std::move(j);
  return {};
}

}  // namespace

Reply error_reply(int status, const std::string& message) {
  Reply r;
  r.status = status;
  r.body = {{"error", message}};
  r.message = message;
  return r;
}

int status_of(const Error& e) {
  switch (e.kind) {
    case ErrorKind::Usage:
    case ErrorKind::Config: return 400;
    case ErrorKind::NotFound: return 404;
    case ErrorKind::State: return 409;
    default: return 500;
  }
}

Reply error_reply(const Error& e) { return error_reply(status_of(e), e.message); }

Reply Router::dispatch(Call& c, std::string& token_name) const {
  token_name.clear();
  const std::string bearer = "Bearer ";
  if (c.authorization.compare(0, bearer.size(), bearer) != 0 || c.authorization.size() == bearer.size())
    return error_reply(401, "missing bearer token (Authorization: Bearer TOKEN)");
  auto tok = tokens_.authenticate(c.authorization.substr(bearer.size()));
  if (!tok) return error_reply(401, "invalid token: " + tok.error().message);
  c.token = *tok;
  token_name = tok->name;

  auto segs = split_path(c.path);
  const Route* route = nullptr;
  bool path_known = false;
  for (const auto& r : routes_) {
    std::vector<std::string> params;
    if (!match(r.pattern, segs, params)) continue;
    path_known = true;
    if (r.method != c.method) continue;
    route = &r;
    c.params = std::move(params);
    break;
  }
  if (!route) return path_known ? error_reply(405, c.method + " " + c.path + ": method not allowed")
                                 : error_reply(404, c.path + ": no such endpoint");
  for (size_t i = 0; i < c.params.size(); ++i)
    if (auto v = check_id("path: " + param_name(route->pattern, i), c.params[i]); !v) return error_reply(v.error());
  if (!role_allows(c.token.role, route->need))
    return error_reply(403, "token " + c.token.name + " (role " + role_name(c.token.role) + ") may not " +
                                c.method + " " + route->pattern);
  if (route->takes_body)
    if (auto r = parse_body(c); r.status != 200) return r;
  std::string bundle;
  if (route->scope) {
    auto b = route->scope(c);
    if (!b) return error_reply(b.error());
    bundle = *b;
  }
  if (!scope_allows(c.token.bundles, route->need, bundle))
    return error_reply(403, "token " + c.token.name + " may not act on bundle \"" + bundle + "\"");
  try {
    return route->handler(c);
  } catch (const std::exception& e) {
    return error_reply(500, std::string("internal error: ") + e.what());
  }
}

Result<void> check_id(const std::string& what, const std::string& v) {
  auto r = runtime::StateStore::validate_id(v);
  if (!r) return Error::make(ErrorKind::Usage, what + " \"" + v.substr(0, 64) + "\": " + r.error().message);
  return ok();
}

Result<std::string> string_field(const json& j, const std::string& name, bool required) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    if (required) return Error::make(ErrorKind::Usage, "body: field \"" + name + "\" is required");
    return std::string();
  }
  if (!it->is_string()) return Error::make(ErrorKind::Usage, "body: field \"" + name + "\": want a string");
  return it->get<std::string>();
}

Result<int> int_field(const json& j, const std::string& name, int dflt) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_number_integer()) return Error::make(ErrorKind::Usage, "body: field \"" + name + "\": want an integer");
  return it->get<int>();
}

Result<std::vector<std::string>> strings_field(const json& j, const std::string& name) {
  auto it = j.find(name);
  std::vector<std::string> out;
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return Error::make(ErrorKind::Usage, "body: field \"" + name + "\": want an array of strings");
  for (const auto& e : *it) {
    if (!e.is_string()) return Error::make(ErrorKind::Usage, "body: field \"" + name + "\": want an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace envrun::agent::api
