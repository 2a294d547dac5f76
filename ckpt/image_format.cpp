// The byte layout of the image's fixed-size parts; see image_format.hpp and envrun-image(5).
#include "ckpt/image_format.hpp"

#include <cstdio>
#include <cstring>

#include "ckpt/crc32c.hpp"

namespace envrun::ckpt {

const char* section_name(SectionType type) {
  switch (type) {
    case SectionType::Inventory: return "inventory";
    case SectionType::ProcessTree: return "process-tree";
    case SectionType::ProcessCore: return "process-core";
    case SectionType::ThreadRegs: return "thread-regs";
    case SectionType::ThreadXstate: return "thread-xstate";
    case SectionType::Mm: return "mm";
    case SectionType::Pages: return "pages";
    case SectionType::Files: return "files";
    case SectionType::FileData: return "file-data";
    case SectionType::SharedMem: return "shared-mem";
    case SectionType::ParentPages: return "parent-pages";
    case SectionType::End: return "end";
  }
  return "unknown";
}

bool section_known(uint32_t type) {
  return std::strcmp(section_name(static_cast<SectionType>(type)), "unknown") != 0;
}

namespace format {

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::array<uint8_t, kFileHeaderSize> encode_file_header() {
  std::array<uint8_t, kFileHeaderSize> b{};
  std::memcpy(b.data(), kImageMagic, sizeof kImageMagic);
  put16(b.data() + 8, kFormatMajor);
  put16(b.data() + 10, kFormatMinor);
  put32(b.data() + 12, kFileHeaderSize);
  put32(b.data() + kFileHeaderSize - 4, crc32c(b.data(), kFileHeaderSize - 4));
  return b;
}

std::array<uint8_t, kSectionHeaderSize> encode_section(const SectionHeader& h) {
  std::array<uint8_t, kSectionHeaderSize> b{};
  put32(b.data() + 0, h.type);
  put32(b.data() + 4, h.flags);
  put64(b.data() + 8, h.id);
  put64(b.data() + 16, h.raw_size);
  put64(b.data() + 24, h.stored_size);
  put32(b.data() + 32, h.crc);
  put32(b.data() + 40, h.index);
  put32(b.data() + 44, crc32c(b.data(), 44));
  return b;
}

SectionHeader decode_section(const uint8_t* p, uint64_t offset, bool* header_crc_ok,
                             uint32_t* reserved) {
  SectionHeader h;
  h.type = get32(p + 0);
  h.flags = get32(p + 4);
  h.id = get64(p + 8);
  h.raw_size = get64(p + 16);
  h.stored_size = get64(p + 24);
  h.crc = get32(p + 32);
  *reserved = get32(p + 36);
  h.index = get32(p + 40);
  h.offset = offset;
  *header_crc_ok = get32(p + 44) == crc32c(p, 44);
  return h;
}

std::array<uint8_t, kChunkHeaderSize> encode_chunk(const Chunk& c) {
  std::array<uint8_t, kChunkHeaderSize> b{};
  put32(b.data() + 0, c.raw_len);
  put32(b.data() + 4, c.stored_len | (c.stored_raw ? kChunkStoredRaw : 0));
  put32(b.data() + 8, c.crc);
  put32(b.data() + 12, crc32c(b.data(), 12));
  return b;
}

Chunk decode_chunk(const uint8_t* p, bool* header_crc_ok) {
  Chunk c;
  c.raw_len = get32(p + 0);
  uint32_t stored = get32(p + 4);
  c.stored_raw = (stored & kChunkStoredRaw) != 0;
  c.stored_len = stored & ~kChunkStoredRaw;
  c.crc = get32(p + 8);
  *header_crc_ok = get32(p + 12) == crc32c(p, 12);
  return c;
}

std::array<uint8_t, kEndPayloadSize> encode_end(const EndRecord& e) {
  std::array<uint8_t, kEndPayloadSize> b{};
  put64(b.data() + 0, e.sections);
  put64(b.data() + 8, e.bytes_before);
  put64(b.data() + 16, e.raw_bytes);
  return b;
}

EndRecord decode_end(const uint8_t* p) { return {get64(p), get64(p + 8), get64(p + 16)}; }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string label(const SectionHeader& h) {
  std::string type = section_name(h.section_type());
  if (type == "unknown") type = "type " + hex32(h.type);
  return "section " + std::to_string(h.index) + " (" + type + ", id " + std::to_string(h.id) + ")";
}

std::string describe(const SectionHeader& h) {
  return label(h) + " at offset " + std::to_string(h.offset);
}

}  // namespace format
}  // namespace envrun::ckpt
