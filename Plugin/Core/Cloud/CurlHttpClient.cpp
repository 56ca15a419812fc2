#include "Core/Cloud/CurlHttpClient.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <boost/algorithm/string/replace.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "Core/Cloud/CurlTransfer.h"
#include "Core/Url.h"

#ifndef CLOUD_INGEST_VERSION
#define CLOUD_INGEST_VERSION "dev"
#endif

namespace CloudIngest {

using namespace CurlTransferDetail;

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

bool HasLineBreakOrNul(const std::string& text) {
  return text.find_first_of(std::string("\r\n\0", 3)) != std::string::npos;
}

long Milliseconds(double seconds) {
  if (!std::isfinite(seconds) || seconds <= 0) {
    return 0;  // curl: no limit
  }
  return static_cast<long>(std::min(seconds * 1000.0, 1e9));
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
  if (settings_.maxSendRate > 0) rate_ = std::make_unique<SendRateLimiter>(settings_.maxSendRate);
}

CurlHttpClient::~CurlHttpClient() = default;

HttpResponse CurlHttpClient::Execute(const HttpRequest& request) {
  const std::string method =
      boost::algorithm::to_upper_copy(request.method, std::locale::classic());
  if (!IsHttpToken(method)) {
    throw std::invalid_argument("invalid HTTP method");
  }
  if (aborting_) {
    throw HttpAborted(method + " " + RedactUrl(request.url) +
                      ": not started, transfers are stopped");
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
    if (!IsHttpToken(name) || HasLineBreakOrNul(value)) {
      throw std::invalid_argument("invalid HTTP header " + name.substr(0, 64));
    }
    hasContentType =
        hasContentType || boost::algorithm::iequals(name, "content-type", std::locale::classic());
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
  transfer.aborting = &aborting_;
  // Streamed bodies are the uploads; API calls are small and not held back.
  transfer.rate = request.bodySource != nullptr ? rate_.get() : nullptr;

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
  // Lets AbortAll() end any transfer, API call or upload, whatever the link does.
  CI_SET(curl, CURLOPT_XFERINFOFUNCTION, &ProgressCallback);
  CI_SET(curl, CURLOPT_XFERINFODATA, static_cast<void*>(&transfer));
  CI_SET(curl, CURLOPT_NOPROGRESS, 0L);
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

  const auto describe = [&](const std::string& detail) {
    std::string message = method + " " + RedactUrl(request.url) + ": " + detail;
    // curl's own messages rarely quote the URL, but the query must never leak.
    const size_t query = request.url.find('?');
    if (query != std::string::npos && query + 1 < request.url.size()) {
      boost::algorithm::replace_all(message, request.url.substr(query + 1), "(redacted)");
    }
    boost::algorithm::replace_all(message, request.basicPassword, "***");
    return message;
  };
  const auto fail = [&](const std::string& detail) { return CurlError(describe(detail)); };

  if (transfer.aborted) {
    throw HttpAborted(describe("aborted, transfers are stopped"));
  }
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
  // To the end of the answer: libcurl's start-transfer time marks the first
  // byte sent, not received, for a request with a body.
  curl_off_t sending = 0;
  curl_off_t answered = 0;
  if (curl_easy_getinfo(curl, CURLINFO_PRETRANSFER_TIME_T, &sending) == CURLE_OK &&
      curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &answered) == CURLE_OK && answered > sending) {
    transfer.response.answerSeconds = static_cast<double>(answered - sending) / 1e6;
  }
  return std::move(transfer.response);
}

#undef CI_SET

}  // namespace CloudIngest
