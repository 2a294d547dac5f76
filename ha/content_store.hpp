// The agent's content store: ROOT/blobs/sha256/<hex>, one file per content, written
// under a temporary name, checked against its SHA-256, then renamed into place. The
// blobs are read-only sources: a bundle's files are copies of them.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "ha/crypto.hpp"
#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::ha {

class ContentStore {
 public:
  explicit ContentStore(std::string dir) : dir_(std::move(dir)) {}
  Result<void> init() const;
  const std::string& dir() const { return dir_; }
  std::string path(const std::string& hex) const { return dir_ + "/" + hex; }
  bool has(const std::string& hex) const;
  // Flushes every blob written so far to disk (one syncfs for a whole sync round).
  Result<void> sync() const;

 private:
  std::string dir_;
};

// A blob being received: appended to tmp_dir/<hex>.partial while hashed; commit() moves it
// into the store if its digest and size are the announced ones, else drops it.
class BlobWriter {
 public:
  static Result<BlobWriter> open(const ContentStore& store, const std::string& hex, uint64_t size,
                                 const std::string& tmp_dir);
  BlobWriter(BlobWriter&&) = default;
  ~BlobWriter();
  Result<void> append(Bytes data);
  uint64_t written() const { return written_; }
  uint64_t size() const { return size_; }
  Result<bool> commit();  // false: the content is not the announced one (dropped)

 private:
  BlobWriter() = default;
  std::string hex_, tmp_, final_;
  uint64_t size_ = 0, written_ = 0;
  UniqueFd fd_;
  std::unique_ptr<Sha256> sha_;
};

}  // namespace envrun::ha
