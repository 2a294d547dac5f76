// DbView: a read-only view over a compiled interception database (db_format.h) held in
// memory (an mmap in the library, a buffer in `envrun intercept explain`).
// open() validates everything once; after that no lookup allocates, locks or fails.
// Header-only and libc-only: the LD_PRELOAD library includes it.
#pragma once
#include <cstring>

#include "intercept/db_format.h"

namespace envrun::idb {

class DbView {
 public:
  // Validate `data` (size bytes). Returns nullptr when it is a usable database, else a
  // static message naming what is wrong ("bad magic", "checksum mismatch", ...).
  const char* open(const void* data, size_t size) {
    base_ = static_cast<const unsigned char*>(data);
    size_ = size;
    if (size < sizeof(Header)) return "truncated (shorter than its header)";
    hdr_ = reinterpret_cast<const Header*>(base_);
    if (std::memcmp(hdr_->magic, kMagic, sizeof kMagic) != 0) return "not an envrun interception database (bad magic)";
    if (hdr_->version != kVersion) return "unsupported database version";
    if (hdr_->header_size < sizeof(Header) || hdr_->header_size > size) return "bad header size";
    if (hdr_->total_size != size || size > kMaxTotalSize) return "truncated or oversized (size does not match header)";
    if (crc32(base_ + hdr_->header_size, size - hdr_->header_size) != hdr_->checksum) return "checksum mismatch (corrupted)";
    if (!section_ok(hdr_->strings, 1)) return "string table out of bounds";
    strings_ = reinterpret_cast<const char*>(base_ + hdr_->strings.off);
    if (hdr_->strings.count == 0 || strings_[hdr_->strings.count - 1] != '\0') return "string table not terminated";
    if (!section_ok(hdr_->files, sizeof(FileRule)) || !section_ok(hdr_->env, sizeof(EnvRule)) ||
        !section_ok(hdr_->net, sizeof(NetRule)) || !section_ok(hdr_->interceptors, sizeof(Interceptor)) ||
        !section_ok(hdr_->options, sizeof(Option)))
      return "section out of bounds";
    if (hdr_->files.count > kMaxFileRules) return "too many file rules";
    if (hdr_->interceptors.count > kMaxInterceptors) return "too many interceptors";
    if (!str_ok(hdr_->source)) return "bad string reference";
    for (uint32_t i = 0; i < file_count(); ++i) {
      const FileRule& r = files()[i];
      if (!str_ok(r.inside) || !str_ok(r.outside) || !str_ok(r.upper)) return "bad string reference";
      if (r.inside.len == 0 || str(r.inside)[0] != '/') return "file rule with a relative inside path";
      if (r.mode < uint8_t(FileMode::Merge) || r.mode > uint8_t(FileMode::Hide)) return "file rule with an unknown mode";
      if (i > 0 && compare(files()[i - 1].inside, r.inside) >= 0) return "file rules not sorted or duplicated";
    }
    for (uint32_t i = 0; i < env_count(); ++i)
      if (!str_ok(env()[i].name) || !str_ok(env()[i].value)) return "bad string reference";
    for (uint32_t i = 0; i < interceptor_count(); ++i) {
      const Interceptor& c = interceptors()[i];
      if (!str_ok(c.name)) return "bad string reference";
      if (c.first_option > option_count() || c.option_count > option_count() - c.first_option) return "interceptor options out of bounds";
    }
    for (uint32_t i = 0; i < option_count(); ++i)
      if (!str_ok(options()[i].key) || !str_ok(options()[i].value)) return "bad string reference";
    index_first_components();
    return nullptr;
  }

  const Header& header() const { return *hdr_; }
  const char* str(Str s) const { return strings_ + s.off; }
  const FileRule* files() const { return at<FileRule>(hdr_->files); }
  uint32_t file_count() const { return hdr_->files.count; }
  const EnvRule* env() const { return at<EnvRule>(hdr_->env); }
  uint32_t env_count() const { return hdr_->env.count; }
  const NetRule* net() const { return at<NetRule>(hdr_->net); }
  uint32_t net_count() const { return hdr_->net.count; }
  const Interceptor* interceptors() const { return at<Interceptor>(hdr_->interceptors); }
  uint32_t interceptor_count() const { return hdr_->interceptors.count; }
  const Option* options() const { return at<Option>(hdr_->options); }
  uint32_t option_count() const { return hdr_->options.count; }
  // Interceptor index by name, or -1.
  int interceptor_index(const char* name) const {
    for (uint32_t i = 0; i < interceptor_count(); ++i)
      if (std::strcmp(str(interceptors()[i].name), name) == 0) return int(i);
    return -1;
  }
  // Option value of interceptor i, or nullptr.
  const char* option(uint32_t i, const char* key) const {
    const Interceptor& c = interceptors()[i];
    for (uint32_t k = 0; k < c.option_count; ++k) {
      const Option& o = options()[c.first_option + k];
      if (std::strcmp(str(o.key), key) == 0) return str(o.value);
    }
    return nullptr;
  }

  // The rule whose inside path is the longest component-wise prefix of `path`
  // (absolute, normalized, `len` bytes), or nullptr. A few ns when the first component
  // of the path starts no rule; then one binary search per '/' in the path.
  const FileRule* match(const char* path, size_t len) const {
    if (file_count() == 0 || len == 0 || path[0] != '/') return nullptr;
    if (!has_root_rule_) {
      size_t e = 1;
      while (e < len && path[e] != '/') ++e;
      if (!(first_mask_ & bit(path + 1, e - 1))) return nullptr;
    }
    size_t k = len;
    for (;;) {
      if (const FileRule* r = find_exact(path, k)) return r;
      if (k <= 1) return nullptr;
      do --k; while (k > 0 && path[k] != '/');
      if (k == 0) return has_root_rule_ ? find_exact("/", 1) : nullptr;
    }
  }

  // The resolver's fast test: false when no rule can match an absolute path whose first
  // component is s[0..n) (and that has no ".." to climb out of it). A few ns.
  bool first_component_may_match(const char* s, size_t n) const {
    if (file_count() == 0) return false;
    return has_root_rule_ || (first_mask_ & bit(s, n)) != 0;
  }
  // The same in one pass over a NUL-terminated path: p is what follows the leading '/';
  // *n receives the length of the first component.
  bool first_component_may_match(const char* p, size_t* n) const {
    uint32_t h = 2166136261u;
    size_t i = 0;
    for (; p[i] != '\0' && p[i] != '/'; ++i) h = (h ^ uint8_t(p[i])) * 16777619u;
    *n = i;
    return has_root_rule_ || (first_mask_ & (uint64_t(1) << (h & 63))) != 0;
  }

  // True when a rule's inside path is `dir` itself or lies below it (dir normalized).
  // Used to decide whether relative paths from a cwd need the resolver at all.
  bool has_rule_at_or_below(const char* dir, size_t len) const {
    if (len == 1 && dir[0] == '/') return file_count() > 0;
    for (uint32_t i = 0; i < file_count(); ++i) {
      const FileRule& r = files()[i];
      if (r.inside.len >= len && std::memcmp(str(r.inside), dir, len) == 0 &&
          (r.inside.len == len || str(r.inside)[len] == '/'))
        return true;
    }
    return false;
  }

  // Reverse mapping: the rule whose outside (or, with upper=true, upper) directory is the
  // longest prefix of the real path `path`, or nullptr. Used by getcwd/realpath/readlink.
  const FileRule* match_reverse(const char* path, size_t len, bool upper) const {
    const FileRule* best = nullptr;
    for (uint32_t i = 0; i < file_count(); ++i) {
      const FileRule& r = files()[i];
      Str o = upper ? r.upper : r.outside;
      if (o.len == 0 || o.len > len || std::memcmp(str(o), path, o.len) != 0) continue;
      if (o.len != len && path[o.len] != '/' && !(o.len == 1)) continue;
      if (!best || o.len > (upper ? best->upper.len : best->outside.len)) best = &r;
    }
    return best;
  }

 private:
  template <class T>
  const T* at(Section s) const { return reinterpret_cast<const T*>(base_ + s.off); }
  bool section_ok(Section s, size_t elem) const {
    if (s.off % 8 != 0 && elem != 1) return false;
    return s.off <= size_ && uint64_t(s.count) * elem <= size_ - s.off;
  }
  bool str_ok(Str s) const {
    return uint64_t(s.off) + s.len < hdr_->strings.count && strings_[s.off + s.len] == '\0';
  }
  int compare(Str a, Str b) const { return compare(str(a), a.len, str(b), b.len); }
  static int compare(const char* a, size_t na, const char* b, size_t nb) {
    int c = std::memcmp(a, b, na < nb ? na : nb);
    if (c != 0) return c;
    return na < nb ? -1 : na > nb ? 1 : 0;
  }
  const FileRule* find_exact(const char* p, size_t n) const {
    uint32_t lo = 0, hi = file_count();
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo) / 2;
      const FileRule& r = files()[mid];
      int c = compare(str(r.inside), r.inside.len, p, n);
      if (c == 0) return &r;
      if (c < 0) lo = mid + 1; else hi = mid;
    }
    return nullptr;
  }
  static uint64_t bit(const char* s, size_t n) {
    uint32_t h = 2166136261u;  // FNV-1a of the first component
    for (size_t i = 0; i < n; ++i) h = (h ^ uint8_t(s[i])) * 16777619u;
    return uint64_t(1) << (h & 63);
  }
  void index_first_components() {
    first_mask_ = 0;
    has_root_rule_ = false;
    for (uint32_t i = 0; i < file_count(); ++i) {
      const char* s = str(files()[i].inside);
      uint32_t n = files()[i].inside.len;
      if (n == 1) { has_root_rule_ = true; continue; }
      size_t e = 1;
      while (e < n && s[e] != '/') ++e;
      first_mask_ |= bit(s + 1, e - 1);
    }
  }

  const unsigned char* base_ = nullptr;
  size_t size_ = 0;
  const Header* hdr_ = nullptr;
  const char* strings_ = nullptr;
  uint64_t first_mask_ = 0;
  bool has_root_rule_ = false;
};

}  // namespace envrun::idb
