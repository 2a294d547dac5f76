// HttpClient: libcurl easy requests with bounded in-memory bodies.
#include "bundle/registry_http.hpp"

#include <cctype>
#include <memory>
#include <mutex>

namespace envrun::registry {
namespace {

struct Sink {
  HttpResponse* resp;
  size_t max_body;
  bool too_big = false;
};

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  auto* s = static_cast<Sink*>(ud);
  if (s->resp->body.size() + size * n > s->max_body) {
    s->too_big = true;
    return 0;
  }
  s->resp->body.append(p, size * n);
  return size * n;
}

size_t on_header(char* p, size_t size, size_t n, void* ud) {
  auto* s = static_cast<Sink*>(ud);
  std::string line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) s->resp->headers.clear();  // a new response (redirect)
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    auto b = line.find_first_not_of(" \t", colon + 1);
    auto e = line.find_last_not_of(" \t\r\n");
    s->resp->headers[name] = b == std::string::npos || e < b ? "" : line.substr(b, e - b + 1);
  }
  return size * n;
}

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

HeaderList::HeaderList(const std::vector<std::string>& lines) {
  for (const auto& l : lines) list_ = curl_slist_append(list_, l.c_str());
}
HeaderList::~HeaderList() { curl_slist_free_all(list_); }

HttpClient::HttpClient(bool insecure) : insecure_(insecure) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

void HttpClient::setup(CURL* h, const std::string& url) const {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, insecure_ ? "http,https" : "https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 20L);
  // A transfer that stalls (under 1 byte/s for 60 s) is abandoned.
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "envrun/" ENVRUN_VERSION);
  if (insecure_) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
}

Result<HttpResponse> HttpClient::get(const std::string& url, const std::vector<std::string>& headers,
                                     size_t max_body) const {
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h) return Error::make(ErrorKind::System, "curl_easy_init failed");
  HttpResponse resp;
  Sink sink{&resp, max_body};
  HeaderList hl(headers);
  char errbuf[CURL_ERROR_SIZE] = {0};
  setup(h.get(), url);
  curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, hl.get());
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h.get(), CURLOPT_HEADERDATA, &sink);
  curl_easy_setopt(h.get(), CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(h.get());
  if (sink.too_big) return Error::make(ErrorKind::Generic, url + ": response larger than " + std::to_string(max_body) + " bytes");
  if (rc != CURLE_OK)
    return Error::make(ErrorKind::System, std::string(*errbuf ? errbuf : curl_easy_strerror(rc)));
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

}  // namespace envrun::registry
