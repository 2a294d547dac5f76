// The web console (agent/console/index.html, app.js, style.css): static files embedded into
// the binary at build time and served by the agent's API server without a token (the page
// asks for one and sends it as `Authorization: Bearer` on every /v1 request).
#pragma once
#include <optional>
#include <string_view>
#include <utility>

namespace envrun::agent {

// The file for an HTTP request path: "/", "/ui" and "/ui/" are index.html; "/ui/NAME" is
// the embedded file NAME (no directories, no dot files). A query string is ignored.
// Returns (content, content type), or nullopt for any other path (the server answers 404).
std::optional<std::pair<std::string_view, std::string_view>> console_asset(std::string_view path);

}  // namespace envrun::agent
