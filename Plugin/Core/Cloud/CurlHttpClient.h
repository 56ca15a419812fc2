#pragma once
// IHttpClient on libcurl. Keeps a small pool of easy handles (one taken per
// request, returned after), so connections and TLS sessions are reused across
// requests and threads; thread-safe.
#include <atomic>
#include <memory>
#include <string>

#include "Core/Cloud/Http.h"
#include "Core/Cloud/SendRate.h"

namespace CloudIngest {

struct CurlSettings {
  double timeout = 60;         // seconds: whole request, or stall of a streamed body (0 = none)
  double connectTimeout = 10;  // seconds
  bool verifyPeers = true;
  std::string caCertificates;  // file; empty: system default
  std::string proxy;
  size_t maxResponseBytes = 4 * 1024 * 1024;  // larger answers are a transport error
  uint64_t maxSendRate = 0;  // bytes per second over every streamed body (uploads); 0: no cap
};

class CurlHttpClient : public IHttpClient {
 public:
  explicit CurlHttpClient(CurlSettings settings);
  ~CurlHttpClient() override;
  HttpResponse Execute(const HttpRequest& request) override;
  // Every transfer's progress callback checks this flag (curl calls it at
  // least once a second, even while the peer reads nothing).
  void AbortAll() override { aborting_ = true; }
  void ResumeTransfers() override { aborting_ = false; }

 private:
  CurlSettings settings_;
  std::atomic<bool> aborting_{false};
  std::unique_ptr<SendRateLimiter> rate_;  // null without MaxSendRate
  class HandlePool;
  std::unique_ptr<HandlePool> pool_;
};

}  // namespace CloudIngest
