#include "CurlHttpClient.h"

#include "Text.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <vector>

#ifndef CLOUD_INGEST_VERSION
#define CLOUD_INGEST_VERSION "dev"
#endif

namespace CloudIngest {

namespace {

constexpr size_t kMaxIdleHandles = 16;

// Never paired with curl_global_cleanup: the plugin (and Orthanc itself) may
// still use libcurl until the process ends.
void EnsureCurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

char ToLowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string ToLower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), ToLowerAscii);
  return text;
}

std::string ToUpper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; });
  return text;
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool IsToken(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), IsTokenChar);
}

bool HasLineBreakOrNul(const std::string& text) {
  return text.find_first_of(std::string("\r\n\0", 3)) != std::string::npos;
}

long Milliseconds(double seconds) {
  if (!std::isfinite(seconds) || seconds <= 0) {
    return 0;  // curl: no limit
  }
  return static_cast<long>(std::min(seconds * 1000.0, 1e9));
}

// An in-memory body that does not copy the request's string.
class BorrowedBodySource : public IBodySource {
 public:
  explicit BorrowedBodySource(const std::string& data) : data_(data) {}
  uint64_t Size() const override { return data_.size(); }
  size_t Read(char* buffer, size_t max) override {
    const size_t count = std::min(max, data_.size() - position_);
    std::memcpy(buffer, data_.data() + position_, count);
    position_ += count;
    return count;
  }
  void Rewind() override { position_ = 0; }

 private:
  const std::string& data_;
  size_t position_ = 0;
};

// State shared with the C callbacks of one transfer. Callbacks never let an
// exception cross libcurl: they record it and abort.
struct Transfer {
  IBodySource* source = nullptr;
  uint64_t size = 0;
  uint64_t sent = 0;
  std::string bodyError;
  HttpResponse response;
  size_t maxResponseBytes = 0;
  bool tooLarge = false;
};

size_t ReadCallback(char* buffer, size_t size, size_t count, void* userData) {
  auto& transfer = *static_cast<Transfer*>(userData);
  if (transfer.source == nullptr) {
    return 0;
  }
  const size_t max = size * count;
  size_t read = 0;
  try {
    read = transfer.source->Read(buffer, max);
  } catch (const std::exception& e) {
    transfer.bodyError = e.what();
    return CURL_READFUNC_ABORT;
  } catch (...) {
    transfer.bodyError = "unknown error";
    return CURL_READFUNC_ABORT;
  }
  if (read > max || transfer.sent + read > transfer.size) {
    transfer.bodyError = "the body source returned more bytes than its size";
    return CURL_READFUNC_ABORT;
  }
  transfer.sent += read;
  return read;
}

int SeekCallback(void* userData, curl_off_t offset, int origin) {
  auto& transfer = *static_cast<Transfer*>(userData);
  if (origin != SEEK_SET || offset != 0) {
    return CURL_SEEKFUNC_CANTSEEK;  // curl then falls back to reading forward
  }
  try {
    if (transfer.source != nullptr) {
      transfer.source->Rewind();
    }
  } catch (const std::exception& e) {
    transfer.bodyError = std::string("rewind failed: ") + e.what();
    return CURL_SEEKFUNC_FAIL;
  } catch (...) {
    transfer.bodyError = "rewind failed";
    return CURL_SEEKFUNC_FAIL;
  }
  transfer.sent = 0;
  return CURL_SEEKFUNC_OK;
}

size_t WriteCallback(char* data, size_t size, size_t count, void* userData) {
  auto& transfer = *static_cast<Transfer*>(userData);
  const size_t bytes = size * count;
  if (bytes > transfer.maxResponseBytes - transfer.response.body.size()) {
    transfer.tooLarge = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  try {
    transfer.response.body.append(data, bytes);
  } catch (...) {
    return 0;
  }
  return bytes;
}

size_t HeaderCallback(char* data, size_t size, size_t count, void* userData) {
  auto& transfer = *static_cast<Transfer*>(userData);
  const size_t bytes = size * count;
  try {
    std::string line(data, bytes);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) {
      line.pop_back();
    }
    if (line.compare(0, 5, "HTTP/") == 0) {
      // A new response begins (after "100 Continue" or a proxy's CONNECT answer).
      transfer.response.headers.clear();
      return bytes;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      return bytes;
    }
    const std::string name = ToLower(line.substr(0, colon));
    const size_t valueStart = line.find_first_not_of(" \t", colon + 1);
    const size_t valueEnd = line.find_last_not_of(" \t");
    const std::string value = valueStart == std::string::npos
                                  ? std::string()
                                  : line.substr(valueStart, valueEnd - valueStart + 1);
    auto [it, inserted] = transfer.response.headers.emplace(name, value);
    if (!inserted) {
      it->second += ", " + value;  // repeated fields combine (RFC 9110 5.3)
    }
  } catch (...) {
    return 0;
  }
  return bytes;
}

class CurlError : public HttpTransportError {
 public:
  using HttpTransportError::HttpTransportError;
};

template <typename T>
void SetOption(CURL* curl, CURLoption option, T value, const char* name) {
  const CURLcode code = curl_easy_setopt(curl, option, value);
  if (code != CURLE_OK) {
    throw CurlError(std::string("curl option ") + name + ": " + curl_easy_strerror(code));
  }
}
#define CI_SET(curl, option, value) SetOption(curl, option, value, #option)

}  // namespace

// Idle easy handles: a handle keeps its connection cache and TLS sessions, so
// taking one that was used before reuses a kept-alive connection.
class CurlHttpClient::HandlePool {
 public:
  // Gives the handle back to the pool whatever happens to the request.
  class Lease {
   public:
    explicit Lease(HandlePool& pool) : pool_(pool), handle_(pool.Take()) {}
    ~Lease() { pool_.Return(std::move(handle_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    CURL* get() const { return handle_.get(); }

   private:
    HandlePool& pool_;
    EasyHandle handle_;
  };

  EasyHandle Take() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        EasyHandle handle = std::move(idle_.back());
        idle_.pop_back();
        return handle;
      }
    }
    EasyHandle handle(curl_easy_init());
    if (!handle) {
      throw HttpTransportError("curl_easy_init failed");
    }
    return handle;
  }

  void Return(EasyHandle handle) {
    // Drops every option (and the pointers to this request's buffers) but
    // keeps live connections, the DNS cache and TLS session ids.
    curl_easy_reset(handle.get());
    const std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.size() < kMaxIdleHandles) {
      idle_.push_back(std::move(handle));
    }
  }

 private:
  std::mutex mutex_;
  std::vector<EasyHandle> idle_;
};

CurlHttpClient::CurlHttpClient(CurlSettings settings)
    : settings_(std::move(settings)), pool_(std::make_unique<HandlePool>()) {
  EnsureCurlGlobalInit();
}

CurlHttpClient::~CurlHttpClient() = default;

HttpResponse CurlHttpClient::Execute(const HttpRequest& request) {
  const std::string method = ToUpper(request.method);
  if (!IsToken(method)) {
    throw std::invalid_argument("invalid HTTP method");
  }

  HeaderList headers;
  bool hasContentType = false;
  const auto addHeader = [&headers](const std::string& line) {
    curl_slist* extended = curl_slist_append(headers.get(), line.c_str());
    if (extended == nullptr) {
      throw std::bad_alloc();
    }
    headers.release();
    headers.reset(extended);
  };
  for (const auto& [name, value] : request.headers) {
    if (!IsToken(name) || HasLineBreakOrNul(value)) {
      throw std::invalid_argument("invalid HTTP header " + name.substr(0, 64));
    }
    hasContentType = hasContentType || ToLower(name) == "content-type";
    // "Name;" is curl's way of sending a header with an empty value.
    addHeader(value.empty() ? name + ";" : name + ": " + value);
  }
  addHeader("Expect:");  // no 100-continue round trip before bodies

  std::unique_ptr<BorrowedBodySource> borrowed;
  IBodySource* source = request.bodySource.get();
  if (source == nullptr && !request.body.empty()) {
    borrowed = std::make_unique<BorrowedBodySource>(request.body);
    source = borrowed.get();
  }

  Transfer transfer;
  transfer.source = source;
  transfer.size = source != nullptr ? source->Size() : 0;
  transfer.maxResponseBytes = settings_.maxResponseBytes;

  // Declared before the lease: the handle is reset (dropping its pointers to
  // these buffers) before they go away.
  char errorBuffer[CURL_ERROR_SIZE] = {0};
  HandlePool::Lease lease(*pool_);
  CURL* curl = lease.get();

  CI_SET(curl, CURLOPT_URL, request.url.c_str());
  CI_SET(curl, CURLOPT_ERRORBUFFER, errorBuffer);
  CI_SET(curl, CURLOPT_NOSIGNAL, 1L);  // worker threads: no SIGALRM for DNS timeouts
  CI_SET(curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  CI_SET(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  CI_SET(curl, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  CI_SET(curl, CURLOPT_USERAGENT, "OrthancCloudIngest/" CLOUD_INGEST_VERSION);
  // API calls are small: `timeout` bounds the whole request. A streamed body
  // (an instance or a study's ZIP) may rightly take longer than that on a slow
  // link, so there it bounds a stall instead: less than one byte per second in
  // either direction for `timeout` seconds (the wait for the answer included).
  // Both are always set: handles are pooled.
  if (request.bodySource != nullptr && settings_.timeout > 0) {
    CI_SET(curl, CURLOPT_TIMEOUT_MS, 0L);
    CI_SET(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    CI_SET(curl, CURLOPT_LOW_SPEED_TIME,
           std::max(1L, static_cast<long>(std::ceil(settings_.timeout))));
  } else {
    CI_SET(curl, CURLOPT_TIMEOUT_MS, Milliseconds(settings_.timeout));
    CI_SET(curl, CURLOPT_LOW_SPEED_LIMIT, 0L);
    CI_SET(curl, CURLOPT_LOW_SPEED_TIME, 0L);
  }
  CI_SET(curl, CURLOPT_CONNECTTIMEOUT_MS, Milliseconds(settings_.connectTimeout));
  CI_SET(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  CI_SET(curl, CURLOPT_SSL_VERIFYPEER, settings_.verifyPeers ? 1L : 0L);
  CI_SET(curl, CURLOPT_SSL_VERIFYHOST, settings_.verifyPeers ? 2L : 0L);
  if (!settings_.caCertificates.empty()) {
    CI_SET(curl, CURLOPT_CAINFO, settings_.caCertificates.c_str());
  }
  // Empty: curl's defaults apply (including the http_proxy/no_proxy environment).
  if (!settings_.proxy.empty()) {
    CI_SET(curl, CURLOPT_PROXY, settings_.proxy.c_str());
  }
  if (!request.basicUser.empty()) {
    CI_SET(curl, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    CI_SET(curl, CURLOPT_USERNAME, request.basicUser.c_str());
    CI_SET(curl, CURLOPT_PASSWORD, request.basicPassword.c_str());
  }

  // Always our callbacks: curl's default read function would read stdin.
  CI_SET(curl, CURLOPT_READFUNCTION, &ReadCallback);
  CI_SET(curl, CURLOPT_READDATA, static_cast<void*>(&transfer));
  CI_SET(curl, CURLOPT_SEEKFUNCTION, &SeekCallback);
  CI_SET(curl, CURLOPT_SEEKDATA, static_cast<void*>(&transfer));
  CI_SET(curl, CURLOPT_WRITEFUNCTION, &WriteCallback);
  CI_SET(curl, CURLOPT_WRITEDATA, static_cast<void*>(&transfer));
  CI_SET(curl, CURLOPT_HEADERFUNCTION, &HeaderCallback);
  CI_SET(curl, CURLOPT_HEADERDATA, static_cast<void*>(&transfer));
  CI_SET(curl, CURLOPT_MAXFILESIZE_LARGE,
         static_cast<curl_off_t>(std::min<uint64_t>(settings_.maxResponseBytes, INT64_MAX)));

  const auto size = static_cast<curl_off_t>(transfer.size);
  if (method == "PUT") {
    CI_SET(curl, CURLOPT_UPLOAD, 1L);
    CI_SET(curl, CURLOPT_INFILESIZE_LARGE, size);
  } else if (source != nullptr || method == "POST" || method == "PATCH") {
    // POST mechanics with the real method name: this is how a GET (the
    // default for new-order) carries a JSON body with an exact Content-Length.
    CI_SET(curl, CURLOPT_POST, 1L);
    CI_SET(curl, CURLOPT_POSTFIELDSIZE_LARGE, size);
    if (method != "POST") {
      CI_SET(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    if (!hasContentType) {
      addHeader("Content-Type:");  // not curl's implicit form type
    }
  } else if (method == "GET") {
    CI_SET(curl, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    CI_SET(curl, CURLOPT_NOBODY, 1L);
  } else {
    CI_SET(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  CI_SET(curl, CURLOPT_HTTPHEADER, headers.get());

  const CURLcode code = curl_easy_perform(curl);

  const auto fail = [&](std::string detail) -> CurlError {
    std::string message = method + " " + RedactUrl(request.url) + ": " + detail;
    // curl's own messages rarely quote the URL, but the query must never leak.
    const size_t query = request.url.find('?');
    if (query != std::string::npos && query + 1 < request.url.size()) {
      ReplaceAll(message, request.url.substr(query + 1), "(redacted)");
    }
    ReplaceAll(message, request.basicPassword, "***");
    return CurlError(message);
  };

  if (transfer.tooLarge || code == CURLE_FILESIZE_EXCEEDED) {
    throw fail("response larger than " + std::to_string(settings_.maxResponseBytes) + " bytes");
  }
  if (!transfer.bodyError.empty()) {
    throw fail("reading the request body failed: " + transfer.bodyError);
  }
  if (code != CURLE_OK) {
    std::string detail = curl_easy_strerror(code);
    if (errorBuffer[0] != '\0') {
      detail += std::string(" (") + errorBuffer + ")";
    }
    throw fail(detail);
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status == 0) {
    throw fail("no HTTP status received");
  }
  transfer.response.status = status;
  return std::move(transfer.response);
}

#undef CI_SET

}  // namespace CloudIngest
