#include "Core/Audit/Receipt.h"

#include <json/json.h>

#include <algorithm>

#include "Core/Hashes.h"
#include "Core/Time.h"

namespace CloudIngest {

void ReceiptCollector::Add(ReceiptFile file) {
  std::lock_guard<std::mutex> lock(mutex_);
  files_.push_back(std::move(file));
}

std::vector<ReceiptFile> ReceiptCollector::Files() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ReceiptFile> files = files_;
  std::sort(files.begin(), files.end(),
            [](const ReceiptFile& a, const ReceiptFile& b) { return a.filename < b.filename; });
  return files;
}

Json::Value BuildReceipt(const ReceiptHeader& header, const std::vector<ReceiptFile>& files) {
  Json::Value receipt;
  for (const auto& [key, value] :
       {std::pair<const char*, std::string>{"orthanc_study_id", header.orthancStudyId},
        {"study_instance_uid", header.studyInstanceUid},
        {"order_id", header.orderId},
        {"node", header.node},
        {"mode", header.mode},
        {"started_at", FormatIsoTime(header.startedAt)},
        {"finished_at", FormatIsoTime(header.finishedAt)}}) {
    receipt[key] = value;
  }
  Json::Value list(Json::arrayValue);
  uint64_t bytes = 0;
  for (const ReceiptFile& file : files) {
    Json::Value item;
    if (!file.sopInstanceUid.empty()) item["sop_instance_uid"] = file.sopInstanceUid;
    item["filename"] = file.filename;
    item["bytes"] = static_cast<Json::UInt64>(file.bytes);
    item["sha256"] = file.sha256;
    item["md5"] = file.md5;
    item["etag"] = file.etag;
    list.append(item);
    bytes += file.bytes;
  }
  receipt["files"] = list;
  receipt["file_count"] = static_cast<Json::UInt64>(files.size());
  receipt["bytes"] = static_cast<Json::UInt64>(bytes);
  return receipt;
}

std::string CanonicalJson(const Json::Value& value) {
  Json::StreamWriterBuilder builder;
  builder["indentation"] = "";
  builder["emitUTF8"] = true;
  return Json::writeString(builder, value);  // jsoncpp keeps object keys sorted
}

Json::Value SignReceipt(Json::Value receipt, const std::string& key) {
  receipt.removeMember("hmac");
  if (!key.empty()) receipt["hmac"] = HmacSha256Hex(key, CanonicalJson(receipt));
  return receipt;
}

}  // namespace CloudIngest
