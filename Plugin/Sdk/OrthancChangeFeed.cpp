#include "OrthancChangeFeed.h"

namespace CloudIngest::Sdk {

const std::string& OrthancChangeFeed::TypeFilter() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (typeFilter_) return *typeFilter_;
  if (!orthanc_.ReportsCapabilities()) {
    typeFilter_.emplace();  // Orthanc before 1.12.5 ignores "type": never asked
    return *typeFilter_;
  }
  const Json::Value system = rest_.GetJson("/system");  // throws: decided at the next read
  if (system["Capabilities"]["HasExtendedChanges"].asBool()) {
    std::string types;
    for (const char* type : kLoggedStudyChanges)
      types += (types.empty() ? "" : ";") + std::string(type);
    typeFilter_ = "&type=" + types;
    log_.Info("CloudIngest: reading /changes filtered by type (" + types +
              "; the index has ExtendedChanges)");
  } else {
    typeFilter_.emplace();
    log_.Info("CloudIngest: reading every change of /changes (the index has no ExtendedChanges)");
  }
  return *typeFilter_;
}

ChangesPage OrthancChangeFeed::GetChanges(int64_t since, unsigned limit) {
  const Json::Value answer = rest_.GetJson("/changes?since=" + std::to_string(since) +
                                           "&limit=" + std::to_string(limit) + TypeFilter());
  ChangesPage page;
  page.done = answer["Done"].asBool();
  // Without a change, "Last" is the log's end, read in the same transaction
  // (filtered too): the readers' cursor may move there.
  page.last = answer["Last"].asInt64();
  for (const auto& c : answer["Changes"]) {
    Change change;
    change.seq = c["Seq"].asInt64();
    change.changeType = c["ChangeType"].asString();
    change.resourceType = c["ResourceType"].asString();
    change.id = c["ID"].asString();
    page.changes.push_back(std::move(change));
  }
  return page;
}

int64_t OrthancChangeFeed::LastSeq() {
  return rest_.GetJson("/changes?last")["Last"].asInt64();
}

}  // namespace CloudIngest::Sdk
