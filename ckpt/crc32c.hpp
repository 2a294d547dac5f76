// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every part of
// a checkpoint image. The SSE4.2 crc32 instruction when the CPU has it (three
// independent streams combined), a slicing-by-8 table otherwise.
#pragma once
#include <cstddef>
#include <cstdint>

namespace envrun::ckpt {

// crc32c_extend(crc32c(A), B) == crc32c(A followed by B); crc32c(x) == crc32c_extend(0, x).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32c(const void* data, size_t n) { return crc32c_extend(0, data, n); }

// The table path alone (tests compare it with the dispatching one).
uint32_t crc32c_extend_portable(uint32_t crc, const void* data, size_t n);
// True when crc32c_extend uses the crc32 instruction.
bool crc32c_hardware();

namespace detail {
// Raw register update (no pre/post inversion) on the hardware path; crc32c_hw.cpp.
uint32_t crc32c_update_hw(uint32_t reg, const uint8_t* p, size_t n);
// reg * x^(8*len) mod P for the two stream lengths the hardware path combines with.
uint32_t crc32c_shift(uint32_t reg, bool long_block);
inline constexpr size_t kCrcLongStream = 8192;
inline constexpr size_t kCrcShortStream = 256;
}  // namespace detail

}  // namespace envrun::ckpt
