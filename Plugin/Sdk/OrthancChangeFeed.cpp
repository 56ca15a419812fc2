#include "OrthancChangeFeed.h"

namespace CloudIngest::Sdk {

ChangesPage OrthancChangeFeed::GetChanges(int64_t since, unsigned limit) {
  const Json::Value answer =
      rest_.GetJson("/changes?since=" + std::to_string(since) + "&limit=" + std::to_string(limit));
  ChangesPage page;
  page.done = answer["Done"].asBool();
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
