// CRC-32C: the portable slicing-by-8 path, the shift tables the hardware path combines
// its streams with, and the run-time choice between the two.
#include "ckpt/crc32c.hpp"

#include <array>
#include <cstring>

namespace envrun::ckpt {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

struct SliceTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  SliceTables() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; ++b)
      for (int s = 1; s < 8; ++s) t[s][b] = (t[s - 1][b] >> 8) ^ t[0][t[s - 1][b] & 0xff];
  }
};

const SliceTables& slice_tables() {
  static const SliceTables tables;
  return tables;
}

// a * b mod P, polynomials in the reflected representation (bit 31 is x^0).
uint32_t mult_mod_p(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;
  }
  return product;
}

// x^n mod P by square and multiply.
uint32_t x_pow_mod_p(uint64_t n) {
  uint32_t result = 1u << 31;  // x^0
  uint32_t base = 1u << 30;    // x^1
  while (n) {
    if (n & 1) result = mult_mod_p(result, base);
    base = mult_mod_p(base, base);
    n >>= 1;
  }
  return result;
}

// reg -> reg * x^(8*len) mod P, split by bytes: the map is linear in reg.
struct ShiftTable {
  std::array<std::array<uint32_t, 256>, 4> t{};
  explicit ShiftTable(size_t len) {
    uint32_t xp = x_pow_mod_p(8 * static_cast<uint64_t>(len));
    for (int k = 0; k < 4; ++k)
      for (uint32_t b = 0; b < 256; ++b) t[k][b] = mult_mod_p(xp, b << (8 * k));
  }
  uint32_t apply(uint32_t reg) const {
    return t[0][reg & 0xff] ^ t[1][(reg >> 8) & 0xff] ^ t[2][(reg >> 16) & 0xff] ^ t[3][reg >> 24];
  }
};

bool cpu_has_sse42() {
#if defined(__x86_64__)
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
#else
  return false;
#endif
}

}  // namespace

uint32_t detail::crc32c_shift(uint32_t reg, bool long_block) {
  static const ShiftTable long_table(kCrcLongStream);
  static const ShiftTable short_table(kCrcShortStream);
  return long_block ? long_table.apply(reg) : short_table.apply(reg);
}

uint32_t crc32c_extend_portable(uint32_t crc, const void* data, size_t n) {
  const auto& t = slice_tables().t;
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t reg = ~crc;
  while (n >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= reg;  // little-endian host (x86_64)
    reg = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) reg = (reg >> 8) ^ t[0][(reg ^ *p++) & 0xff];
  return ~reg;
}

bool crc32c_hardware() { return cpu_has_sse42(); }

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n) {
  if (!cpu_has_sse42()) return crc32c_extend_portable(crc, data, n);
  return ~detail::crc32c_update_hw(~crc, static_cast<const uint8_t*>(data), n);
}

}  // namespace envrun::ckpt
