// console_asset(): the request path -> one of the embedded console files.
#include "agent/console/console.hpp"

#include "agent/console/console_assets.hpp"

namespace envrun::agent {

namespace {

std::string_view content_type_of(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

// The embedded file's name for a path, or "" when the path names none.
std::string_view file_name_for(std::string_view path) {
  if (auto q = path.find_first_of("?#"); q != std::string_view::npos) path = path.substr(0, q);
  if (path == "/" || path == "/ui" || path == "/ui/" || path == "/index.html") return "index.html";
  constexpr std::string_view kPrefix = "/ui/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return {};
  std::string_view name = path.substr(kPrefix.size());
  if (name.empty() || name.front() == '.' || name.find('/') != std::string_view::npos ||
      name.find('\\') != std::string_view::npos || name.find('%') != std::string_view::npos)
    return {};
  return name;
}

}  // namespace

std::optional<std::pair<std::string_view, std::string_view>> console_asset(std::string_view path) {
  std::string_view name = file_name_for(path);
  if (name.empty()) return std::nullopt;
  for (std::size_t i = 0; i < console_detail::kEmbeddedFileCount; ++i) {
    const auto& f = console_detail::kEmbeddedFiles[i];
    if (f.name == name) return std::pair{f.content, content_type_of(name)};
  }
  return std::nullopt;
}

}  // namespace envrun::agent
