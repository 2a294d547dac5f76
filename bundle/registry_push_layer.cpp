// pack_rootfs: a sorted walk of the rootfs into libarchive, the tar stream into zlib.
#include "bundle/registry_push_layer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "bundle/registry_digest.hpp"
#include "kernel/fd.hpp"

namespace envrun::registry {
namespace {

// The tar stream's sink: hash, gzip, hash, write.
struct GzipSink {
  int fd;
  z_stream z{};
  Sha256 tar_hash, gz_hash;
  int64_t out_bytes = 0;
  std::string error;

  bool write_out(const unsigned char* p, size_t n) {
    gz_hash.update(p, n);
    out_bytes += int64_t(n);
    while (n > 0) {
      ssize_t w = ::write(fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        error = Error::sys("write layer").message;
        return false;
      }
      p += w, n -= size_t(w);
    }
    return true;
  }
  bool deflate_chunk(const void* data, size_t n, int flush) {
    unsigned char out[64 * 1024];
    z.next_in = static_cast<Bytef*>(const_cast<void*>(data));
    z.avail_in = uInt(n);
    do {
      z.next_out = out;
      z.avail_out = sizeof out;
      int rc = ::deflate(&z, flush);
      if (rc == Z_STREAM_ERROR) return error = "zlib deflate failed", false;
      if (!write_out(out, sizeof out - z.avail_out)) return false;
    } while (z.avail_out == 0 || (flush == Z_FINISH && z.avail_in > 0));
    return true;
  }
};

la_ssize_t on_write(struct archive*, void* ud, const void* buf, size_t n) {
  auto* s = static_cast<GzipSink*>(ud);
  s->tar_hash.update(buf, n);
  return s->deflate_chunk(buf, n, Z_NO_FLUSH) ? la_ssize_t(n) : -1;
}

struct Packer {
  struct archive* a;
  std::string root;
  std::map<std::pair<dev_t, ino_t>, std::string> links;  // first path of multi-linked files
  uint64_t entries = 0;

  Result<void> fail(const std::string& what) {
    return Error::make(ErrorKind::System, what + ": " + (archive_error_string(a) ? archive_error_string(a) : "libarchive error"));
  }

  Result<void> add_data(const std::string& full, const std::string& rel) {
    UniqueFd fd(::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return Error::sys("rootfs " + rel);
    std::vector<char> buf(128 * 1024);
    for (;;) {
      ssize_t r = ::read(fd.get(), buf.data(), buf.size());
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Error::sys("rootfs " + rel);
      if (r == 0) return ok();
      if (archive_write_data(a, buf.data(), size_t(r)) != r) return fail("layer " + rel);
    }
  }

  Result<void> add(const std::string& rel, const struct stat& st) {
    std::string full = root + "/" + rel;
    if (S_ISSOCK(st.st_mode)) return ok();  // sockets do not travel in layers
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), rel.c_str());
    archive_entry_set_mode(e.get(), st.st_mode);
    archive_entry_set_uid(e.get(), st.st_uid);
    archive_entry_set_gid(e.get(), st.st_gid);
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    bool data = false;
    if (S_ISLNK(st.st_mode)) {
      std::string target(size_t(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(full.c_str(), target.data(), target.size());
      if (n < 0) return Error::sys("rootfs " + rel);
      target.resize(size_t(n));
      archive_entry_set_symlink(e.get(), target.c_str());
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
      archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
    } else if (S_ISREG(st.st_mode)) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = st.st_nlink > 1 ? links.find(key) : links.end();
      if (it != links.end()) {
        archive_entry_set_hardlink(e.get(), it->second.c_str());
        archive_entry_set_size(e.get(), 0);
      } else {
        if (st.st_nlink > 1) links.emplace(key, rel);
        archive_entry_set_size(e.get(), st.st_size);
        data = true;
      }
    }
    if (archive_write_header(a, e.get()) != ARCHIVE_OK) return fail("layer " + rel);
    ++entries;
    if (data) ENVRUN_CHECK(add_data(full, rel));
    return ok();
  }

  Result<void> walk(const std::string& rel) {
    std::string dir = rel.empty() ? root : root + "/" + rel;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) return Error::sys("rootfs " + (rel.empty() ? std::string(".") : rel));
    std::vector<std::string> names;
    while (auto* de = ::readdir(d.get())) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    d.reset();
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::string child = rel.empty() ? n : rel + "/" + n;
      struct stat st {};
      if (::lstat((root + "/" + child).c_str(), &st) != 0) return Error::sys("rootfs " + child);
      ENVRUN_CHECK(add(child, st));
      if (S_ISDIR(st.st_mode)) ENVRUN_CHECK(walk(child));
    }
    return ok();
  }
};

}  // namespace

Result<PackedLayer> pack_rootfs(const std::string& rootfs, int out_fd) {
  GzipSink sink{out_fd};
  if (::deflateInit2(&sink.z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return Error::make(ErrorKind::System, "zlib: deflateInit2 failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> zguard(&sink.z, ::deflateEnd);
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_write_new(), archive_write_free);
  archive_write_set_format_pax(a.get());  // pax: mtimes keep their nanoseconds
  archive_write_add_filter_none(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open2(a.get(), &sink, nullptr, on_write, nullptr, nullptr) != ARCHIVE_OK)
    return Error::make(ErrorKind::System, std::string("layer: ") + archive_error_string(a.get()));
  Packer p{a.get(), rootfs};
  auto walked = p.walk("");
  if (!walked) return std::move(walked).error();
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    return Error::make(ErrorKind::System, "layer: " + (sink.error.empty() ? archive_error_string(a.get()) : sink.error));
  if (!sink.deflate_chunk(nullptr, 0, Z_FINISH)) return Error::make(ErrorKind::System, "layer: " + sink.error);
  PackedLayer out;
  out.diff_id = sink.tar_hash.finish();
  out.digest = sink.gz_hash.finish();
  out.size = sink.out_bytes;
  out.entries = p.entries;
  return out;
}

}  // namespace envrun::registry
