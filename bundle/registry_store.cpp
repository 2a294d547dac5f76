// BlobStore paths and small reads.
#include "bundle/registry_store.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "kernel/fs.hpp"
#include "kernel/process.hpp"

namespace envrun::registry {

std::string default_data_root() {
  if (::geteuid() == 0) return "/var/lib/envrun";
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg && *xdg == '/') return std::string(xdg) + "/envrun";
  return proc::home_dir() + "/.local/share/envrun";
}

Result<void> BlobStore::init() {
  auto r = fs::mkdir_p(root_ + "/blobs/sha256", 0755);
  if (!r) return std::move(r).error().with_context("store " + root_);
  // Temp files of downloads whose process is gone (killed) are removed.
  std::string dir = root_ + "/blobs/sha256/";
  for (const auto& n : fs::list_dir(dir)) {
    if (n.rfind(".tmp-", 0) != 0) continue;
    long pid = std::strtol(n.substr(n.find_last_of('-') + 1).c_str(), nullptr, 10);
    if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) ::unlink((dir + n).c_str());
  }
  return ok();
}

std::string BlobStore::blob_path(const std::string& digest) const {
  return root_ + "/blobs/sha256/" + digest.substr(7);
}

std::string BlobStore::temp_path(const std::string& digest) const {
  return root_ + "/blobs/sha256/.tmp-" + digest.substr(7, 16) + "-" + std::to_string(::getpid());
}

std::string BlobStore::partial_path(const std::string& digest) const {
  return root_ + "/blobs/sha256/.partial-" + digest.substr(7);
}

bool BlobStore::has(const std::string& digest, int64_t size) const {
  struct stat st {};
  return ::stat(blob_path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode) && (size < 0 || st.st_size == size);
}

Result<std::string> BlobStore::read(const std::string& digest, size_t max) const {
  struct stat st {};
  std::string p = blob_path(digest);
  if (::stat(p.c_str(), &st) != 0) return Error::sys(p);
  if (size_t(st.st_size) > max) return Error::make(ErrorKind::Generic, p + ": larger than " + std::to_string(max) + " bytes");
  return fs::read_file(p);
}

}  // namespace envrun::registry
