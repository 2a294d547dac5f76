// Byte sizes on the command line: "512", "64K", "8M", "2G", "1T" (powers of 1024).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <string>

namespace envrun::cli {

// 0 when malformed.
inline uint64_t parse_size(const std::string& s) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str()) return 0;
  std::string unit = end;
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  int shift = unit.empty() ? 0 : unit == "K" || unit == "k" ? 10 : unit == "M" || unit == "m" ? 20
                               : unit == "G" || unit == "g" ? 30 : unit == "T" || unit == "t" ? 40 : -1;
  if (shift < 0 || (shift && v > (~0ull >> shift))) return 0;
  return uint64_t(v) << shift;
}

}  // namespace envrun::cli
