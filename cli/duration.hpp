// Durations on the command line: "5s", "500ms", "1m", "2" (seconds).
#pragma once
#include <cstdlib>
#include <string>

namespace envrun::cli {

// Milliseconds; -1 when malformed.
inline long parse_duration_ms(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  std::string unit = end ? end : "";
  if (end == s.c_str() || v < 0) return -1;
  if (unit.empty() || unit == "s") return long(v * 1000);
  if (unit == "ms") return long(v);
  if (unit == "m") return long(v * 60000);
  if (unit == "h") return long(v * 3600000);
  return -1;
}

}  // namespace envrun::cli
