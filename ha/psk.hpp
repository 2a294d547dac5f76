// The pre-shared key that authenticates two migration agents (--psk-file).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernel/result.hpp"

namespace envrun::ha {

inline constexpr size_t kPskMinBytes = 32;
inline constexpr size_t kPskMaxBytes = 4096;

// Reads the key file: a regular file (symlinks are followed) of 32..4096 bytes, used as is
// (binary; a trailing newline is part of the key), that neither group nor others may
// read or write. Each refusal names the file and says how to fix it.
Result<std::vector<uint8_t>> load_psk(const std::string& path);

}  // namespace envrun::ha
