// fetch_blobs: libcurl multi, up to `jobs` transfers at once, verify-while-streaming.
#include "bundle/registry_fetch.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <memory>
#include <set>

#include "bundle/registry_digest.hpp"
#include "bundle/registry_pull.hpp"
#include "kernel/fd.hpp"
#include "kernel/log.hpp"

namespace envrun::registry {
namespace {

struct Transfer {
  const Descriptor* desc = nullptr;
  std::string tmp;
  bool resumable = false;  // tmp is the blob's locked partial file, kept after a broken transfer
  bool discard = false;    // the content is wrong: the partial file goes
  UniqueFd fd;
  Sha256 hash;
  int64_t got = 0;
  int64_t resumed_at = 0;  // bytes already there when the transfer started (Range request)
  bool first_data = true;
  bool overflow = false;
  int write_errno = 0;
  CURL* easy = nullptr;
  std::unique_ptr<HeaderList> headers;
  char errbuf[CURL_ERROR_SIZE] = {0};
  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    // Cleared once renamed; a partial download that was only interrupted stays for next time.
    if (!tmp.empty() && (!resumable || discard || got == 0)) ::unlink(tmp.c_str());
  }
};

// A server that ignores the Range request sends the whole blob (200): start over.
bool restart_if_full_answer(Transfer* t, long status) {
  if (!t->first_data) return true;
  t->first_data = false;
  if (t->resumed_at == 0 || status == 206) return true;
  log::debug("pull: the registry ignored the range request for " + t->desc->digest + ": downloading it whole");
  t->got = t->resumed_at = 0;
  (void)t->hash.finish();  // resets
  return ::ftruncate(t->fd.get(), 0) == 0 && ::lseek(t->fd.get(), 0, SEEK_SET) == 0;
}

// Open (and lock) the blob's partial file; hash what it already holds.
Result<void> open_partial(Transfer& t, const BlobStore& store) {
  const auto& d = *t.desc;
  std::string partial = store.partial_path(d.digest);
  t.fd = UniqueFd(::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (t.fd && ::flock(t.fd.get(), LOCK_EX | LOCK_NB) == 0) {
    t.tmp = partial;
    t.resumable = true;
    struct stat st {};
    if (::fstat(t.fd.get(), &st) != 0) return Error::sys("store: " + partial);
    if (st.st_size >= d.size) {  // cannot be a prefix of the blob
      if (::ftruncate(t.fd.get(), 0) != 0) return Error::sys("store: " + partial);
      st.st_size = 0;
    }
    char buf[1 << 16];
    for (int64_t off = 0; off < st.st_size;) {
      ssize_t n = ::pread(t.fd.get(), buf, sizeof buf, off);
      if (n <= 0) return Error::sys("store: reading " + partial);
      t.hash.update(buf, size_t(n));
      off += n;
    }
    t.got = t.resumed_at = st.st_size;
    if (::lseek(t.fd.get(), 0, SEEK_END) < 0) return Error::sys("store: " + partial);
    return ok();
  }
  // Another pull is downloading this blob: download a private copy.
  std::string tmp = store.temp_path(d.digest);
  t.fd = UniqueFd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!t.fd) return Error::sys("store: " + tmp);
  t.tmp = tmp;
  return ok();
}

size_t on_data(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  // Only 2xx bodies are blob content; error bodies are dropped (status checked at the end).
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  if (status / 100 != 2) return len;
  if (!restart_if_full_answer(t, status)) {
    t->write_errno = errno;
    return 0;
  }
  if (t->got + int64_t(len) > t->desc->size) {
    t->overflow = true;
    return 0;
  }
  t->hash.update(p, len);
  for (size_t off = 0; off < len;) {
    ssize_t w = ::write(t->fd.get(), p + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      t->write_errno = w < 0 ? errno : EIO;
      return 0;
    }
    off += size_t(w);
  }
  t->got += int64_t(len);
  return len;
}

class Fetcher {
 public:
  Fetcher(RegistryClient& c, const BlobStore& s, PullProgress& p)
      : client_(c), store_(s), progress_(p), multi_(curl_multi_init()) {}
  ~Fetcher() {
    for (auto& t : active_) curl_multi_remove_handle(multi_, t->easy);
    active_.clear();
    curl_multi_cleanup(multi_);
  }
  Result<void> start(const Descriptor& d);
  // Run until every started transfer is done; the first failure aborts the rest.
  Result<void> run(std::deque<const Descriptor*>& pending, int jobs);
  FetchStats stats;

 private:
  Result<void> finish(Transfer& t, CURLcode rc);

  RegistryClient& client_;
  const BlobStore& store_;
  PullProgress& progress_;
  CURLM* multi_;
  std::vector<std::unique_ptr<Transfer>> active_;
};

Result<void> Fetcher::start(const Descriptor& d) {
  auto t = std::make_unique<Transfer>();
  t->desc = &d;
  ENVRUN_CHECK(open_partial(*t, store_));
  t->easy = curl_easy_init();
  if (!t->easy) return Error::make(ErrorKind::System, "curl_easy_init failed");
  client_.http().setup(t->easy, client_.url("blobs/" + d.digest));
  auto hdrs = client_.auth_headers();
  if (t->resumed_at > 0) {
    hdrs.push_back("Range: bytes=" + std::to_string(t->resumed_at) + "-");
    log::debug("pull: resuming blob " + d.digest + " at " + std::to_string(t->resumed_at) + " bytes");
  }
  t->headers = std::make_unique<HeaderList>(hdrs);
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers->get());
  curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_multi_add_handle(multi_, t->easy);
  log::debug("pull: downloading blob " + d.digest + " (" + std::to_string(d.size) + " bytes)");
  active_.push_back(std::move(t));
  return ok();
}

Result<void> Fetcher::finish(Transfer& t, CURLcode rc) {
  const auto& d = *t.desc;
  std::string what = client_.where() + ": blob " + d.digest;
  long status = 0;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
  // Wrong content (or an error answer) is not kept for a later resume.
  t.discard = t.overflow || (rc == CURLE_OK && (status / 100 != 2 || t.got != d.size));
  if (t.overflow)
    return Error::make(ErrorKind::Generic, what + ": digest mismatch: more data than the " + std::to_string(d.size) +
                                               " bytes the manifest says");
  if (t.write_errno) return Error::sys(what + ": writing " + t.tmp, t.write_errno);
  if (rc != CURLE_OK) return Error::make(ErrorKind::System, what + ": " + (*t.errbuf ? t.errbuf : curl_easy_strerror(rc)));
  if (status == 404) return Error::make(ErrorKind::NotFound, what + ": not found in the registry (HTTP 404)");
  if (status / 100 != 2) return Error::make(ErrorKind::Generic, what + ": HTTP " + std::to_string(status));
  if (t.got != d.size)
    return Error::make(ErrorKind::Generic, what + ": size mismatch: got " + std::to_string(t.got) + " bytes, the manifest says " +
                                               std::to_string(d.size));
  std::string got = t.hash.finish();
  if (got != d.digest) {
    t.discard = true;
    return Error::make(ErrorKind::Generic, what + ": digest mismatch: the content is " + got);
  }
  if (::fdatasync(t.fd.get()) != 0) return Error::sys(what + ": fdatasync " + t.tmp);
  std::string final_path = store_.blob_path(d.digest);
  if (::rename(t.tmp.c_str(), final_path.c_str()) != 0) return Error::sys(what + ": rename to " + final_path);
  t.tmp.clear();
  progress_.transferring(d.digest, t.got, d.size);
  progress_.fetched(d.digest, false);
  stats.downloaded++;
  stats.bytes += uint64_t(t.got - t.resumed_at);
  log::debug("pull: blob " + d.digest + " verified and stored");
  return ok();
}

Result<void> Fetcher::run(std::deque<const Descriptor*>& pending, int jobs) {
  while (!pending.empty() || !active_.empty()) {
    if (cancel_requested()) return interrupted_error();
    while (!pending.empty() && int(active_.size()) < jobs) {
      ENVRUN_CHECK(start(*pending.front()));
      pending.pop_front();
    }
    int running = 0;
    if (CURLMcode mc = curl_multi_perform(multi_, &running); mc != CURLM_OK)
      return Error::make(ErrorKind::System, std::string("curl_multi_perform: ") + curl_multi_strerror(mc));
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &t);
      CURLcode rc = m->data.result;
      curl_multi_remove_handle(multi_, m->easy_handle);
      auto r = finish(*t, rc);
      for (auto it = active_.begin(); it != active_.end(); ++it)
        if (it->get() == t) {
          active_.erase(it);
          break;
        }
      if (!r) return r;
    }
    if (!active_.empty()) curl_multi_poll(multi_, nullptr, 0, 100, nullptr);
    for (const auto& t : active_) progress_.transferring(t->desc->digest, t->got, t->desc->size);
  }
  return ok();
}

}  // namespace

Result<FetchStats> fetch_blobs(RegistryClient& client, const BlobStore& store, const std::vector<Descriptor>& blobs,
                               int jobs, PullProgress& progress) {
  Fetcher f(client, store, progress);
  std::deque<const Descriptor*> pending;
  std::set<std::string> seen;
  for (const auto& d : blobs) {
    if (!seen.insert(d.digest).second) continue;
    if (store.has(d.digest, d.size)) {
      f.stats.reused++;
      progress.fetched(d.digest, true);
      log::debug("pull: blob " + d.digest + " already in the store");
      continue;
    }
    pending.push_back(&d);
  }
  ENVRUN_CHECK(f.run(pending, jobs < 1 ? 1 : jobs));
  return f.stats;
}

}  // namespace envrun::registry
