// Internal: the byte layout of the image's fixed-size parts (file header, section
// header, zstd chunk header, End payload) and their checksums. Little-endian always.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "ckpt/image.hpp"

namespace envrun::ckpt::format {

void put16(uint8_t* p, uint16_t v);
void put32(uint8_t* p, uint32_t v);
void put64(uint8_t* p, uint64_t v);
uint16_t get16(const uint8_t* p);
uint32_t get32(const uint8_t* p);
uint64_t get64(const uint8_t* p);

// File header: 0 magic[8] | 8 major u16 | 10 minor u16 | 12 header_size u32 |
// 16 reserved u64 | 24 reserved u32 | header_size-4 crc32c of the bytes before it.
std::array<uint8_t, kFileHeaderSize> encode_file_header();

// Section header: 0 type | 4 flags | 8 id | 16 raw_size | 24 stored_size | 32 crc |
// 36 reserved (0) | 40 index | 44 crc32c of bytes 0..43.
std::array<uint8_t, kSectionHeaderSize> encode_section(const SectionHeader& h);
// Decodes without judging: header_crc_ok tells whether bytes 44..47 match.
SectionHeader decode_section(const uint8_t* p, uint64_t offset, bool* header_crc_ok,
                             uint32_t* reserved);

// Chunk header of a zstd section: 0 raw_len | 4 stored_len (bit 31: stored raw) |
// 8 crc32c of the stored bytes | 12 crc32c of bytes 0..11.
struct Chunk {
  uint32_t raw_len = 0;
  uint32_t stored_len = 0;  // without the kChunkStoredRaw bit
  bool stored_raw = false;
  uint32_t crc = 0;
};
std::array<uint8_t, kChunkHeaderSize> encode_chunk(const Chunk& c);
Chunk decode_chunk(const uint8_t* p, bool* header_crc_ok);

// End payload: 0 sections before End | 8 stream bytes before the End header |
// 16 raw payload bytes before End.
struct EndRecord {
  uint64_t sections = 0;
  uint64_t bytes_before = 0;
  uint64_t raw_bytes = 0;
};
std::array<uint8_t, kEndPayloadSize> encode_end(const EndRecord& e);
EndRecord decode_end(const uint8_t* p);

// "section 3 (pages, id 7)"; describe() adds " at offset 4096" (the header's offset).
std::string label(const SectionHeader& h);
std::string describe(const SectionHeader& h);
std::string hex32(uint32_t v);

}  // namespace envrun::ckpt::format
