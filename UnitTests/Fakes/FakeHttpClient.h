#pragma once
// A scriptable IHttpClient: answers from a queue of scripted responses (or
// transport errors), then from a fallback handler, and records every request
// with the bytes its body source streamed. Thread-safe.
#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "Core/Cloud/Http.h"

namespace CloudIngest::Testing {

struct RecordedRequest {
  HttpRequest request;
  std::string sentBody;  // request.body, or everything bodySource streamed

  // Case-insensitive; empty when absent.
  std::string Header(const std::string& name) const {
    for (const auto& [key, value] : request.headers) {
      if (Lower(key) == Lower(name)) {
        return value;
      }
    }
    return std::string();
  }
  bool HasHeader(const std::string& name) const {
    return std::any_of(request.headers.begin(), request.headers.end(),
                       [&](const auto& header) { return Lower(header.first) == Lower(name); });
  }
  static std::string Lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; });
    return text;
  }
};

inline HttpResponse MakeResponse(long status, std::string body = std::string(),
                                 std::map<std::string, std::string> headers = {}) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  for (const auto& [name, value] : headers) {
    response.headers[RecordedRequest::Lower(name)] = value;
  }
  return response;
}

class FakeHttpClient : public IHttpClient {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Scripted answers are used first, in order.
  void Enqueue(HttpResponse response) {
    Push([response = std::move(response)](const HttpRequest&) { return response; });
  }
  void Enqueue(long status, std::string body = std::string(),
               std::map<std::string, std::string> headers = {}) {
    Enqueue(MakeResponse(status, std::move(body), std::move(headers)));
  }
  void EnqueueTransportError(std::string what) {
    Push([what = std::move(what)](const HttpRequest&) -> HttpResponse {
      throw HttpTransportError(what);
    });
  }
  void EnqueueHandler(Handler handler) { Push(std::move(handler)); }
  // Answers whatever the queue does not.
  void SetHandler(Handler handler) {
    const std::lock_guard<std::mutex> lock(mutex_);
    fallback_ = std::move(handler);
  }

  HttpResponse Execute(const HttpRequest& request) override {
    RecordedRequest recorded{request, request.body};
    if (request.bodySource) {
      // Drain the stream like a real client would, then rewind for the handler.
      recorded.sentBody.clear();
      request.bodySource->Rewind();
      char buffer[4096];
      for (size_t n; (n = request.bodySource->Read(buffer, sizeof buffer)) > 0;) {
        recorded.sentBody.append(buffer, n);
      }
      request.bodySource->Rewind();
    }
    Handler handler;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(std::move(recorded));
      if (!queue_.empty()) {
        handler = std::move(queue_.front());
        queue_.pop_front();
      } else {
        handler = fallback_;
      }
    }
    if (!handler) {
      throw std::logic_error("FakeHttpClient: no response scripted for " + request.method + " " +
                             request.url);
    }
    return handler(request);  // outside the lock: handlers may block or re-enter
  }

  std::vector<RecordedRequest> Requests() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  size_t RequestCount() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return requests_.size();
  }
  RecordedRequest Last() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (requests_.empty()) {
      throw std::logic_error("FakeHttpClient: no request yet");
    }
    return requests_.back();
  }
  size_t Pending() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size();
  }

 private:
  void Push(Handler handler) {
    const std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(handler));
  }

  mutable std::mutex mutex_;
  std::deque<Handler> queue_;
  Handler fallback_;
  std::vector<RecordedRequest> requests_;
};

// For a component that owns its HTTP client while the test keeps the fake.
class ForwardingHttp : public IHttpClient {
 public:
  explicit ForwardingHttp(IHttpClient& target) : target_(target) {}
  HttpResponse Execute(const HttpRequest& request) override { return target_.Execute(request); }

 private:
  IHttpClient& target_;
};

}  // namespace CloudIngest::Testing
