#pragma once
// Follows Orthanc's /changes while the plugin runs and moves the durable
// cursor past every study that is accounted for, so that the catch-up scan
// after a restart looks only at what could have been missed: studies still
// receiving instances (their StableStudy never comes after a crash) and the
// last few seconds of changes.
#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "ChangeFeed.h"
#include "Clock.h"
#include "UploadQueue.h"

namespace CloudIngest {

class ChangeTracker {
 public:
  // `settleSeconds`: how long after being seen in /changes a StableStudy
  // counts as recorded. Orthanc logs the change before it calls the plugin's
  // OnChange (which records the study durably), so the cursor waits.
  ChangeTracker(IChangeFeed& feed, UploadQueue& queue, const IClock& clock,
                double settleSeconds = 10);

  // Reads the changes since the last poll (at most `maxPages` pages of 1000)
  // and saves the cursor if it can move. Returns the saved cursor.
  int64_t Poll(unsigned maxPages = 100);

  // Studies with changes not yet followed by their StableStudy.
  size_t UnsettledStudies() const { return unsettled_.size(); }

 private:
  void Observe(const Change& change, double now);
  int64_t SafeCursor(double now);

  IChangeFeed& feed_;
  UploadQueue& queue_;
  const IClock& clock_;
  const double settleSeconds_;
  int64_t position_;                          // last seq read
  int64_t saved_;                             // last cursor written
  std::map<std::string, int64_t> unsettled_;  // study -> its first change not yet stable
  struct Settling {
    int64_t seq;
    double seenAt;
  };
  std::deque<Settling> settling_;  // StableStudy changes younger than settleSeconds_
};

}  // namespace CloudIngest
