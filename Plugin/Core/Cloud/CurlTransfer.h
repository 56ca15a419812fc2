#pragma once
// One libcurl transfer's state and the C callbacks that move its bytes
// (CurlHttpClient's internals).
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

#include "Core/Cloud/Http.h"
#include "Core/Cloud/SendRate.h"

namespace CloudIngest::CurlTransferDetail {

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
  const std::atomic<bool>* aborting = nullptr;
  bool aborted = false;
  SendRateLimiter* rate = nullptr;  // the node's upload budget (MaxSendRate), if any
};

// Each takes the Transfer as `userData`.
size_t ReadCallback(char* buffer, size_t size, size_t count, void* userData);
int SeekCallback(void* userData, curl_off_t offset, int origin);
size_t WriteCallback(char* data, size_t size, size_t count, void* userData);
size_t HeaderCallback(char* data, size_t size, size_t count, void* userData);
int ProgressCallback(void* userData, curl_off_t, curl_off_t, curl_off_t, curl_off_t);

}  // namespace CloudIngest::CurlTransferDetail
