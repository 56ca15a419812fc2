#pragma once
// The seam between the sender and the network: one request in, one response out.
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace CloudIngest {

// Streams a request body (an instance file, a ZIP) without holding it twice.
class IBodySource {
 public:
  virtual ~IBodySource() = default;
  virtual uint64_t Size() const = 0;
  // Copies up to `max` bytes into `buffer`; returns 0 at the end.
  virtual size_t Read(char* buffer, size_t max) = 0;
  // Back to the first byte (curl may rewind on redirects or auth retries).
  virtual void Rewind() = 0;
};

// A body already in memory.
class StringBodySource : public IBodySource {
 public:
  explicit StringBodySource(std::string data) : data_(std::move(data)) {}
  uint64_t Size() const override { return data_.size(); }
  size_t Read(char* buffer, size_t max) override;
  void Rewind() override { position_ = 0; }
  const std::string& Data() const { return data_; }

 private:
  std::string data_;
  size_t position_ = 0;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                         // used when bodySource is null
  std::shared_ptr<IBodySource> bodySource;  // streamed; sets exact Content-Length
  std::string basicUser;                    // HTTP Basic auth when not empty
  std::string basicPassword;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // keys lower-cased
  std::string body;
  // Seconds from sending the request on an open connection to the end of the
  // answer: for a small exchange, one round trip plus the server's time
  // (0: not measured).
  double answerSeconds = 0;

  // Empty when absent.
  std::string Header(const std::string& lowerCaseName) const;
};

// The request never got an HTTP answer: DNS, connect, TLS, timeout, reset,
// or a response larger than the client accepts.
class HttpTransportError : public std::runtime_error {
 public:
  explicit HttpTransportError(const std::string& what) : std::runtime_error(what) {}
};

// The request was cut short (or never started) because AbortAll() was called:
// the plugin is stopping. Not a network failure: callers stop, never retry.
class HttpAborted : public HttpTransportError {
 public:
  explicit HttpAborted(const std::string& what) : HttpTransportError(what) {}
};

class IHttpClient {
 public:
  virtual ~IHttpClient() = default;
  // Throws HttpTransportError when no HTTP status was received (HttpAborted
  // after AbortAll()).
  virtual HttpResponse Execute(const HttpRequest& request) = 0;
  // Shutdown must not wait for a slow upload: ends every request under way
  // within about a second and refuses new ones, until ResumeTransfers().
  // A client whose requests cannot block (a test fake) may ignore both.
  virtual void AbortAll() {}
  virtual void ResumeTransfers() {}
};

// An RFC 9110 token (a method or a header name): not empty, no separators.
bool IsHttpToken(const std::string& text);

}  // namespace CloudIngest
