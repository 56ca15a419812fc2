#pragma once
// Follows Orthanc's /changes while the plugin runs and moves the durable
// cursor past every study that is accounted for, so that the catch-up scan
// after a restart looks only at what could have been missed: studies still
// receiving instances (their StableStudy never comes after a crash) and the
// last few seconds of changes.
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "Core/Clock.h"
#include "Core/Orthanc/ChangeFeed.h"
#include "Core/Orthanc/StudySource.h"
#include "Core/Store/StudyStore.h"

namespace CloudIngest {

// Stable studies whose insert in the change callback failed (disk full, I/O
// error). The tracker holds the cursor before each of them and inserts it
// again, so that neither this run nor the catch-up after a crash loses it.
class UnrecordedStudies {
 public:
  void Add(const std::string& orthancId);
  void Remove(const std::string& orthancId);
  bool Contains(const std::string& orthancId) const;
  size_t Size() const;
  std::vector<std::string> Ids() const;

 private:
  mutable std::mutex mutex_;
  std::set<std::string> ids_;
};

class ChangeTracker {
 public:
  // `settleSeconds`: how long after being seen in /changes a StableStudy
  // counts as recorded. Orthanc logs the change before it calls the plugin's
  // OnChange (which records the study durably), so the cursor waits.
  // `unrecorded` (may be null): the change callback's failed inserts.
  ChangeTracker(IChangeFeed& feed, StudyStore& queue, const IClock& clock,
                UnrecordedStudies* unrecorded = nullptr, double settleSeconds = 10);

  // Reads the changes since the last poll (at most `maxPages` pages of 1000)
  // and saves the cursor if it can move. Returns the saved cursor. Throws
  // when an unrecorded study still cannot be inserted (the cursor stays).
  int64_t Poll(unsigned maxPages = 100);

  // Studies with changes not yet followed by their StableStudy.
  size_t UnsettledStudies() const { return unsettled_.size(); }

  // With several nodes on one index, a node killed while a study is still
  // arriving never fires its StableStudy, and no other node does. With this
  // set, a study whose changes stay unsettled for StableAge (plus the settle
  // time) is looked up, and queued ("catch-up") once its shared LastUpdate
  // is StableAge old.
  void QueueQuietStudies(IStudySource& source, double stableAge);

 private:
  struct Settling {
    int64_t seq;
    double seenAt;
    std::string study;
  };
  void Observe(const Change& change, double now);
  int64_t SafeCursor(double now);
  void QueueQuiet(double now);
  // The study's StableStudy is settled: insert it again if its callback's
  // insert failed. Throws (the entry stays) when that fails too.
  void Settle(const Settling& entry, double now);

  IChangeFeed& feed_;
  StudyStore& queue_;
  const IClock& clock_;
  UnrecordedStudies* unrecorded_;
  const double settleSeconds_;
  int64_t position_;  // last seq read
  int64_t saved_;     // last cursor written
  struct Unsettled {
    int64_t seq;   // its first change not yet followed by StableStudy
    double since;  // when that change was read, or the study last looked at
  };
  std::map<std::string, Unsettled> unsettled_;
  IStudySource* source_ = nullptr;
  double stableAge_ = 0;
  std::deque<Settling> settling_;  // StableStudy changes younger than settleSeconds_
};

}  // namespace CloudIngest
