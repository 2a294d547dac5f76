// verify_image: read a whole image (every checksum, every zstd chunk decompressed, the
// End totals) without keeping anything. scan_image: the same walk seeking over the
// payloads; restore runs it before it touches anything.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "ckpt/image.hpp"

namespace envrun::ckpt {

SectionTotals& ImageSummary::of(SectionType t) {
  auto v = static_cast<uint32_t>(t);
  return by_type[v < by_type.size() ? v : 0];
}
const SectionTotals& ImageSummary::of(SectionType t) const {
  auto v = static_cast<uint32_t>(t);
  return by_type[v < by_type.size() ? v : 0];
}

namespace {
// On a regular file nothing may follow the End section (the reader gave back its
// read-ahead, so the file offset is right after End).
Result<void> check_nothing_after(int fd, const std::string& name, uint64_t end) {
  uint8_t b;
  ssize_t r;
  do r = ::read(fd, &b, 1);
  while (r < 0 && errno == EINTR);
  if (r < 0) return Error::sys(name + ": read after the end section");
  if (r > 0)
    return Error::make(ErrorKind::Generic, name + ": data after the end section at offset " + std::to_string(end) +
                                               " (the image ends there)");
  return ok();
}

bool is_regular(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}
}  // namespace

namespace {
Result<ImageSummary> walk(int fd, std::string name, bool payloads, const SectionVisitor& visit = {}) {
  ImageReader reader = ENVRUN_TRY(ImageReader::from_fd(fd, name));
  ImageSummary sum;
  sum.format_major = reader.format_major();
  sum.format_minor = reader.format_minor();
  for (;;) {
    auto h = ENVRUN_TRY(reader.next());
    if (!h) break;
    if (visit) ENVRUN_CHECK(visit(*h, reader));
    ENVRUN_CHECK(payloads ? reader.check_payload() : reader.seek_payload());
    SectionTotals& t = sum.of(h->section_type());
    ++t.count;
    t.raw_bytes += h->raw_size;
    t.stored_bytes += reader.stored_bytes_last();
  }
  sum.skipped_optional = reader.skipped_optional();
  sum.raw_bytes = reader.raw_bytes_total();
  sum.stored_bytes = reader.stored_bytes_total();
  SectionTotals known;
  for (size_t i = 1; i < sum.by_type.size(); ++i) {
    known.count += sum.by_type[i].count;
    known.raw_bytes += sum.by_type[i].raw_bytes;
    known.stored_bytes += sum.by_type[i].stored_bytes;
  }
  sum.by_type[0] = {sum.skipped_optional, sum.raw_bytes - known.raw_bytes, sum.stored_bytes - known.stored_bytes};
  sum.sections = known.count + sum.skipped_optional;
  sum.total_bytes = reader.offset();
  sum.end_present = true;
  if (is_regular(fd)) ENVRUN_CHECK(check_nothing_after(fd, name, sum.total_bytes));
  return sum;
}
}  // namespace

Result<ImageSummary> verify_image(int fd, std::string name) { return walk(fd, std::move(name), true); }
Result<ImageSummary> scan_image(int fd, std::string name) { return walk(fd, std::move(name), false); }
Result<ImageSummary> scan_image(int fd, std::string name, const SectionVisitor& visit) {
  return walk(fd, std::move(name), false, visit);
}

}  // namespace envrun::ckpt
