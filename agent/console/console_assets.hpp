// The table of embedded console files that the build generates (embed.cmake): internal to
// console.cpp and the generated console_assets.cpp.
#pragma once
#include <cstddef>
#include <string_view>

namespace envrun::agent::console_detail {

struct EmbeddedFile {
  std::string_view name;     // file name in agent/console, e.g. "app.js"
  std::string_view content;  // its bytes
};

extern const EmbeddedFile kEmbeddedFiles[];
extern const std::size_t kEmbeddedFileCount;

}  // namespace envrun::agent::console_detail
