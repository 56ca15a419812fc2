#include "ChangeTracker.h"

#include <algorithm>

namespace CloudIngest {

ChangeTracker::ChangeTracker(IChangeFeed& feed, UploadQueue& queue, const IClock& clock,
                             double settleSeconds)
    : feed_(feed), queue_(queue), clock_(clock), settleSeconds_(settleSeconds) {
  // The catch-up scan ran first: everything up to its cursor is queued.
  saved_ = queue_.GetChangesCursor();
  if (saved_ < 0) {
    saved_ = feed_.LastSeq();
    queue_.SetChangesCursor(saved_);
  }
  position_ = saved_;
}

void ChangeTracker::Observe(const Change& change, double now) {
  if (change.resourceType != "Study") return;
  if (change.changeType == "NewStudy" || change.changeType == "NewChildInstance") {
    unsettled_.emplace(change.id, change.seq);  // keeps the first one
  } else if (change.changeType == "StableStudy") {
    unsettled_.erase(change.id);
    settling_.push_back({change.seq, now});
  } else if (change.changeType == "Deleted") {
    unsettled_.erase(change.id);
  }
}

int64_t ChangeTracker::SafeCursor(double now) {
  while (!settling_.empty() && settling_.front().seenAt + settleSeconds_ <= now) {
    settling_.pop_front();
  }
  int64_t safe = position_;
  if (!settling_.empty()) safe = std::min(safe, settling_.front().seq - 1);
  for (const auto& [study, seq] : unsettled_) safe = std::min(safe, seq - 1);
  return safe;
}

int64_t ChangeTracker::Poll(unsigned maxPages) {
  const double now = clock_.Now();
  if (const int64_t last = feed_.LastSeq(); last < position_) {
    // The log was cleared while running: follow the new one from its end.
    position_ = saved_ = last;
    unsettled_.clear();
    settling_.clear();
    queue_.SetChangesCursor(last);
  }
  for (unsigned page = 0; page < maxPages; ++page) {
    const ChangesPage changes = feed_.GetChanges(position_, 1000);
    for (const auto& change : changes.changes) {
      Observe(change, now);
      position_ = std::max(position_, change.seq);
    }
    if (changes.done || changes.changes.empty()) break;
  }
  const int64_t safe = SafeCursor(now);
  if (safe > saved_) {
    queue_.SetChangesCursor(safe);
    saved_ = safe;
  }
  return saved_;
}

}  // namespace CloudIngest
