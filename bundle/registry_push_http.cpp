// send_request: libcurl easy HEAD/POST/PUT with the client's auth headers.
#include "bundle/registry_push_http.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace envrun::registry {
namespace {

struct Transfer {
  HttpResponse resp;
  const RequestBody* body;
  size_t offset = 0;  // for in-memory bodies
  int64_t sent = 0;   // for file bodies
};

size_t on_read(char* buf, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t want = size * n;
  if (t->body->fd < 0) {
    size_t k = std::min(want, t->body->data.size() - t->offset);
    std::copy_n(t->body->data.data() + t->offset, k, buf);
    t->offset += k;
    return k;
  }
  ssize_t r = ::pread(t->body->fd, buf, want, t->sent);
  if (r < 0) return CURL_READFUNC_ABORT;
  t->sent += r;
  return size_t(r);
}

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  if (t->resp.body.size() < (1u << 20)) t->resp.body.append(p, size * n);  // error JSON only
  return size * n;
}

size_t on_header(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  std::string line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) t->resp.headers.clear();
  auto colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon);
  for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
  auto b = line.find_first_not_of(" \t", colon + 1);
  auto e = line.find_last_not_of(" \t\r\n");
  t->resp.headers[name] = b == std::string::npos || e < b ? "" : line.substr(b, e - b + 1);
  return size * n;
}

}  // namespace

Result<HttpResponse> send_request(RegistryClient& client, const std::string& method, const std::string& url,
                                  std::vector<std::string> headers, const RequestBody& body) {
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h) return Error::make(ErrorKind::System, "curl_easy_init failed");
  for (auto& a : client.auth_headers()) headers.push_back(a);
  headers.push_back("Expect:");  // no 100-continue round trip
  HeaderList hl(headers);
  Transfer t{{}, &body};
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = h.get();
  client.http().setup(c, url);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // a Location is an answer here
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.data.size()));
  } else {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, curl_off_t(body.fd < 0 ? int64_t(body.data.size()) : body.size));
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK)
    return Error::make(ErrorKind::System, client.where() + ": " + method + " " + url + ": " +
                                              (*errbuf ? errbuf : curl_easy_strerror(rc)));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.resp.status);
  return std::move(t.resp);
}

}  // namespace envrun::registry
