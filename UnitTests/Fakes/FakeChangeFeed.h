#pragma once
// Orthanc's /changes log in memory: changes are appended with increasing
// sequence numbers and read back in pages, as the REST route does.
#include <algorithm>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "Core/Orthanc/ChangeFeed.h"

namespace CloudIngest {

class FakeChangeFeed : public IChangeFeed {
 public:
  int64_t Add(const std::string& changeType, const std::string& studyId,
              const std::string& resourceType = "Study") {
    const std::lock_guard<std::mutex> lock(mutex_);
    Change change;
    change.seq = ++lastSeq_;
    change.changeType = changeType;
    change.resourceType = resourceType;
    change.id = studyId;
    changes_.push_back(change);
    return change.seq;
  }

  ChangesPage GetChanges(int64_t since, unsigned limit) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++pagesRead;
    ChangesPage page;
    page.last = since;
    for (const auto& change : changes_) {
      if (change.seq <= since || !Matches(change)) continue;
      if (page.changes.size() == limit) {
        page.done = false;
        return page;
      }
      page.changes.push_back(change);
      page.last = change.seq;
    }
    page.done = true;
    // As Orthanc: a page without a change ends at the log's end (filtered or not).
    if (page.changes.empty()) page.last = lastSeq_;
    return page;
  }

  // DELETE /changes, or a new Orthanc index: sequence numbers start again.
  void Clear() {
    const std::lock_guard<std::mutex> lock(mutex_);
    changes_.clear();
    lastSeq_ = 0;
  }

  int64_t LastSeq() override {
    const std::lock_guard<std::mutex> lock(mutex_);
    return lastSeq_;
  }

  int pagesRead = 0;
  // Pages hold kLoggedStudyChanges only (/changes?type=..., Orthanc 1.12.5's ExtendedChanges).
  bool filtered = false;

 private:
  bool Matches(const Change& change) const {
    if (!filtered) return true;
    return std::find(std::begin(kLoggedStudyChanges), std::end(kLoggedStudyChanges),
                     change.changeType) != std::end(kLoggedStudyChanges);
  }

  std::mutex mutex_;
  std::vector<Change> changes_;
  int64_t lastSeq_ = 0;
};

}  // namespace CloudIngest
