// The compiled interception database (intercept.db): the binary form of a bundle's
// intercept.yaml, produced by bundle/ (envrun intercept compile, or create) and read by
// libenvrun-intercept.so through an mmap, read-only, with no allocation.
//
// Layout (native byte order, every section 8-byte aligned, offsets from the start of file):
//   Header | FileRule[] (sorted by inside path, bytewise) | EnvRule[] (yaml order)
//          | NetRule[] (yaml order) | Interceptor[] (chain order) | Option[] | string table
// Strings are referenced by {offset into the string table, length}; each is also
// NUL-terminated in the table so that it can be handed to libc as is.
// `checksum` is CRC-32 (IEEE, reflected, as zlib) of bytes [header_size, total_size).
// Paths in FileRule are absolute, lexically normalized (no "//", ".", ".." components,
// no trailing '/', except the root "/"), variables already expanded.
//
// This header is shared by intercept/ (libc only), bundle/ (the compiler) and billing/.
#pragma once
#include <cstddef>
#include <cstdint>

namespace envrun::idb {

inline constexpr char kMagic[8] = {'E', 'N', 'V', 'R', 'I', 'D', 'B', '\0'};
inline constexpr uint32_t kVersion = 1;
// Upper bounds the compiler enforces and the reader relies on (no allocation at lookup).
inline constexpr uint32_t kMaxFileRules = 4096;
inline constexpr uint32_t kMaxInterceptors = 64;   // fits one 64-bit enable mask
inline constexpr uint32_t kMaxTotalSize = 16u << 20;

enum class FileMode : uint8_t {
  Merge = 1,      // inside view = outside (bundle layer) over the host path; writes go to outside
  Override = 2,   // only outside is visible; the host path is not
  WriteCopy = 3,  // reads: upper, else outside; writes copy up into upper (per instance)
  ReadOnly = 4,   // outside, read-only: writes fail with EROFS
  Hide = 5,       // nothing exists there: ENOENT
};

enum class EnvOp : uint8_t { Set = 1, Unset = 2, Prepend = 3, Append = 4 };

enum class NetProto : uint8_t { Any = 0, Tcp = 1, Udp = 2 };

struct Str {
  uint32_t off;  // into the string table
  uint32_t len;  // bytes, without the NUL
};

struct Section {
  uint32_t off;    // from the start of the file
  uint32_t count;  // entries (bytes for the string table)
};

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t header_size;  // sizeof(Header) of the writer
  uint32_t total_size;
  uint32_t checksum;
  uint32_t flags;        // reserved, 0
  uint32_t reserved;
  Section files, env, net, interceptors, options, strings;
  Str source;            // the intercept.yaml it was compiled from (for messages)
};

struct FileRule {
  Str inside;            // absolute, normalized
  Str outside;           // absolute, normalized; empty for Hide
  Str upper;             // WriteCopy: per-instance upper dir; empty otherwise
  uint8_t mode;          // FileMode
  uint8_t flags;         // reserved, 0
  uint16_t reserved;
  uint32_t line;         // line of the rule in the source yaml (1-based), for explain
  uint32_t index;        // position of the rule in the yaml `files` list
};

struct EnvRule {
  Str name;
  Str value;             // empty for Unset
  uint8_t op;            // EnvOp
  char separator;        // Prepend/Append: ':' unless the yaml says otherwise
  uint16_t reserved;
  uint32_t line;
};

struct NetRule {
  uint8_t proto;         // NetProto
  uint8_t family;        // 0 = any, 4 = IPv4, 6 = IPv6 (of the addresses below)
  uint8_t has_inside_addr;
  uint8_t has_outside_addr;
  uint16_t inside_port;  // host byte order; the port the app uses
  uint16_t outside_port; // host byte order; the port really bound / connected
  uint8_t inside_addr[16];   // IPv4 in the first 4 bytes
  uint8_t outside_addr[16];
  uint32_t line;
};

struct Interceptor {
  Str name;              // meter | redirect | net | barrier | ...
  uint32_t first_option; // index into Option[]
  uint32_t option_count;
  uint8_t enabled;       // initial state; the control page has the live one
  uint8_t reserved[3];
  uint32_t line;
};

struct Option {
  Str key;
  Str value;
};

// CRC-32 (IEEE 802.3, as zlib's crc32) - bitwise, the DB is checked once at load.
inline uint32_t crc32(const void* data, size_t n, uint32_t crc = 0) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

}  // namespace envrun::idb
