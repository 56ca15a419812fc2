#pragma once
// An in-memory ingestion service behind IHttpClient, for sender tests: it
// answers token, new-order, upload, PUT and add-metadata like the real API,
// records what arrived, and lets a test inject a failure on any request.
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "Core/Cloud/Http.h"
#include "Core/Hashes.h"

namespace CloudIngest::Testing {

class FakeCloud : public IHttpClient {
 public:
  // Return a response to answer instead of the service; nullopt to proceed.
  using Fault = std::function<std::optional<HttpResponse>(const HttpRequest&, unsigned callIndex)>;

  HttpResponse Execute(const HttpRequest& request) override {
    HttpResponse response = Answer(request);
    // A PUT's wait includes its body: only API answers measure the round trip.
    if (request.method != "PUT") response.answerSeconds = answerSeconds_;
    return response;
  }

  // The round trip every API answer reports from now on (a simulated network).
  void SetAnswerSeconds(double seconds) { answerSeconds_ = seconds; }

  HttpResponse Answer(const HttpRequest& request) {
    std::string step = StepOf(request);
    std::unique_lock<std::mutex> lock(mutex_);
    const unsigned index = calls_[step]++;
    log_.push_back(request.method + " " + step);
    auto fault = faults_.find(step);
    if (fault != faults_.end()) {
      Fault f = fault->second;
      lock.unlock();
      if (auto response = f(request, index)) return *response;
      lock.lock();
    }
    if (step == "token")
      return Json(200, R"({"access_token":"tok-)" + std::to_string(index) +
                           R"(","token_type":"Bearer","expires_in":3600})");
    if (step == "new-order") {
      orders_++;
      orderBodies_.push_back(request.body);
      return Json(200, R"({"order_id":"0b6f3c1e-9a4d-4c2b-8f7e-)" + Pad(orders_) + R"("})");
    }
    if (step == "upload") {
      const auto q = request.url.find("filename=");
      const std::string name = request.url.substr(q + 9, request.url.find('&', q) - q - 9);
      return Json(200,
                  R"({"url":"http://127.0.0.1:9/bucket/)" + name + R"(?X-Amz-Signature=s3cr3t"})");
    }
    if (step == "put") {
      std::string body;
      char buffer[4096];
      request.bodySource->Rewind();
      for (size_t n; (n = request.bodySource->Read(buffer, sizeof buffer)) > 0;)
        body.append(buffer, n);
      const std::string key = request.url.substr(0, request.url.find('?'));
      stored_[key] = body;
      putTimes_.push_back(putTimes_.size());
      HttpResponse r;
      r.status = 200;
      r.headers["etag"] = "\"" + Md5Hex(body) + "\"";
      return r;
    }
    if (step == "add-metadata") {
      metadataBodies_.push_back(request.body);
      HttpResponse r;
      r.status = 204;
      return r;
    }
    return Json(404, R"({"error":"not_found"})");
  }

  void SetFault(const std::string& step, Fault fault) {
    std::lock_guard<std::mutex> lock(mutex_);
    faults_[step] = std::move(fault);
  }
  unsigned Calls(const std::string& step) {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_[step];
  }
  std::map<std::string, std::string> Stored() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stored_;
  }
  std::vector<std::string> OrderBodies() {
    std::lock_guard<std::mutex> lock(mutex_);
    return orderBodies_;
  }
  std::vector<std::string> MetadataBodies() {
    std::lock_guard<std::mutex> lock(mutex_);
    return metadataBodies_;
  }

  static HttpResponse Json(long status, const std::string& body) {
    HttpResponse r;
    r.status = status;
    r.headers["content-type"] = "application/json";
    r.body = body;
    return r;
  }

 private:
  static std::string StepOf(const HttpRequest& r) {
    if (r.url.find("/auth/token") != std::string::npos) return "token";
    if (r.url.find("/new-order") != std::string::npos) return "new-order";
    if (r.url.find("/upload?") != std::string::npos) return "upload";
    if (r.url.find("/add-metadata") != std::string::npos) return "add-metadata";
    if (r.method == "PUT") return "put";
    return "other";
  }
  static std::string Pad(unsigned n) {
    std::string s = std::to_string(n);
    return std::string(12 - s.size(), '0') + s;
  }

  std::mutex mutex_;
  std::atomic<double> answerSeconds_{0};
  std::map<std::string, unsigned> calls_;
  std::map<std::string, Fault> faults_;
  std::vector<std::string> log_;
  unsigned orders_ = 0;
  std::vector<std::string> orderBodies_;
  std::vector<std::string> metadataBodies_;
  std::map<std::string, std::string> stored_;
  std::vector<size_t> putTimes_;
};

}  // namespace CloudIngest::Testing
