// ContentStore and BlobWriter.
#include "ha/content_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "kernel/fs.hpp"

namespace envrun::ha {

Result<void> ContentStore::init() const { return fs::mkdir_p(dir_, 0700); }

bool ContentStore::has(const std::string& hex) const {
  struct stat st {};
  return ::stat(path(hex).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<void> ContentStore::sync() const {
  UniqueFd d(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d || ::syncfs(d.get()) < 0) return Error::sys(dir_ + ": syncfs");
  return ok();
}

Result<BlobWriter> BlobWriter::open(const ContentStore& store, const std::string& hex, uint64_t size,
                                    const std::string& tmp_dir) {
  BlobWriter w;
  w.hex_ = hex, w.size_ = size;
  w.tmp_ = tmp_dir + "/" + hex + ".partial";
  w.final_ = store.path(hex);
  w.fd_.reset(::open(w.tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0444));
  if (!w.fd_) return Error::sys(w.tmp_);
  w.sha_ = std::make_unique<Sha256>();
  return w;
}

BlobWriter::~BlobWriter() {
  if (fd_) ::unlink(tmp_.c_str());
}

Result<void> BlobWriter::append(Bytes data) {
  if (written_ + data.size() > size_)
    return Error::make(ErrorKind::Generic, "blob " + hex_ + ": more than its announced " + std::to_string(size_) + " bytes");
  sha_->update(data);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd_.get(), data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys(tmp_);
    off += size_t(n);
  }
  written_ += data.size();
  return ok();
}

Result<bool> BlobWriter::commit() {
  bool good = written_ == size_ && to_hex(sha_->final()) == hex_;
  if (!good) return false;  // the destructor removes the temporary file
  if (::rename(tmp_.c_str(), final_.c_str()) < 0) return Error::sys(final_);
  fd_.reset();
  return true;
}

}  // namespace envrun::ha
