#pragma once
// IHttpClient on libcurl. Keeps a small pool of easy handles (one taken per
// request, returned after), so connections and TLS sessions are reused across
// requests and threads; thread-safe.
#include <memory>
#include <string>

#include "Http.h"

namespace CloudIngest {

struct CurlSettings {
  double timeout = 60;         // seconds: whole request, or stall of a streamed body (0 = none)
  double connectTimeout = 10;  // seconds
  bool verifyPeers = true;
  std::string caCertificates;  // file; empty: system default
  std::string proxy;
  size_t maxResponseBytes = 4 * 1024 * 1024;  // larger answers are a transport error
};

class CurlHttpClient : public IHttpClient {
 public:
  explicit CurlHttpClient(CurlSettings settings);
  ~CurlHttpClient() override;
  HttpResponse Execute(const HttpRequest& request) override;

 private:
  CurlSettings settings_;
  class HandlePool;
  std::unique_ptr<HandlePool> pool_;
};

}  // namespace CloudIngest
