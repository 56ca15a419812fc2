#pragma once
// Delivery receipts (docs/REFERENCE.md, GET /studies/{id}/receipt): what one
// successful send put in the cloud, file by file, and the store's answer.
#include <json/value.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace CloudIngest {

struct ReceiptFile {
  std::string sopInstanceUid;  // empty for a ZIP or a NIfTI bundle
  std::string filename;
  uint64_t bytes = 0;
  std::string sha256;
  std::string md5;
  std::string etag;  // as the store answered, unquoted
};

// The files of one attempt, added by its upload threads.
class ReceiptCollector {
 public:
  void Add(ReceiptFile file);
  // Sorted by file name, so a receipt does not depend on upload order.
  std::vector<ReceiptFile> Files() const;

 private:
  mutable std::mutex mutex_;
  std::vector<ReceiptFile> files_;
};

struct ReceiptHeader {
  std::string orthancStudyId;
  std::string studyInstanceUid;
  std::string orderId;
  std::string node;
  std::string mode;
  double startedAt = 0;
  double finishedAt = 0;
};

Json::Value BuildReceipt(const ReceiptHeader& header, const std::vector<ReceiptFile>& files);

// Compact JSON with keys sorted, the text the hmac covers (Python:
// json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)).
std::string CanonicalJson(const Json::Value& value);
// Adds "hmac": HMAC-SHA256 with `key` over the receipt's canonical text
// without "hmac"; `key` empty: returned unsigned.
Json::Value SignReceipt(Json::Value receipt, const std::string& key);

}  // namespace CloudIngest
