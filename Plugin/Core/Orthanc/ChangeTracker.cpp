#include "Core/Orthanc/ChangeTracker.h"

#include <algorithm>

#include "Core/Time.h"

namespace CloudIngest {

void UnrecordedStudies::Add(const std::string& orthancId) {
  std::lock_guard<std::mutex> lock(mutex_);
  ids_.insert(orthancId);
}

void UnrecordedStudies::Remove(const std::string& orthancId) {
  std::lock_guard<std::mutex> lock(mutex_);
  ids_.erase(orthancId);
}

bool UnrecordedStudies::Contains(const std::string& orthancId) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ids_.count(orthancId) > 0;
}

std::vector<std::string> UnrecordedStudies::Ids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::vector<std::string>(ids_.begin(), ids_.end());
}

size_t UnrecordedStudies::Size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ids_.size();
}

ChangeTracker::ChangeTracker(IChangeFeed& feed, StudyStore& queue, const IClock& clock,
                             UnrecordedStudies* unrecorded, double settleSeconds)
    : feed_(feed),
      queue_(queue),
      clock_(clock),
      unrecorded_(unrecorded),
      settleSeconds_(settleSeconds) {
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
    unsettled_.emplace(change.id, Unsettled{change.seq, now});  // keeps the first one
  } else if (change.changeType == "StableStudy") {
    unsettled_.erase(change.id);
    settling_.push_back({change.seq, now, change.id});
  } else if (change.changeType == "Deleted") {
    unsettled_.erase(change.id);
    if (unrecorded_ != nullptr) unrecorded_->Remove(change.id);  // nothing left to send
  }
}

int64_t ChangeTracker::SafeCursor(double now) {
  while (!settling_.empty() && settling_.front().seenAt + settleSeconds_ <= now) {
    Settle(settling_.front(), now);
    settling_.pop_front();
  }
  int64_t safe = position_;
  if (!settling_.empty()) safe = std::min(safe, settling_.front().seq - 1);
  for (const auto& [study, entry] : unsettled_) safe = std::min(safe, entry.seq - 1);
  return safe;
}

void ChangeTracker::Settle(const Settling& entry, double now) {
  if (unrecorded_ == nullptr || !unrecorded_->Contains(entry.study)) return;
  EnqueueRequest request;
  request.orthancId = entry.study;
  request.trigger = "auto";
  queue_.Enqueue(request, now);  // throws: the cursor stays before this change
  unrecorded_->Remove(entry.study);
}

void ChangeTracker::QueueQuietStudies(IStudySource& source, double stableAge) {
  source_ = &source;
  stableAge_ = stableAge;
}

void ChangeTracker::QueueQuiet(double now) {
  if (source_ == nullptr) return;
  for (auto it = unsettled_.begin(); it != unsettled_.end();) {
    Unsettled& entry = it->second;
    if (now - entry.since < stableAge_ + settleSeconds_) {
      ++it;
      continue;
    }
    std::optional<double> lastUpdate;
    try {
      lastUpdate = ParseOrthancTime(source_->GetStudy(it->first).lastUpdate);
    } catch (const StudyNotFound&) {
      it = unsettled_.erase(it);  // deleted: nothing to send
      continue;
    }
    if (lastUpdate && now - *lastUpdate < stableAge_) {
      entry.since = now;  // still arriving: look again later
      ++it;
      continue;
    }
    EnqueueRequest request;
    request.orthancId = it->first;
    request.trigger = "catch-up";
    queue_.Enqueue(request, now);  // throws: kept, and tried again at the next poll
    it = unsettled_.erase(it);
  }
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
    // Past a filtered feed's last match: an empty page's end is the log's.
    if (changes.changes.empty()) position_ = std::max(position_, changes.last);
    if (changes.done || changes.changes.empty()) break;
  }
  QueueQuiet(now);
  const int64_t safe = SafeCursor(now);
  if (safe > saved_) {
    queue_.SetChangesCursor(safe);
    saved_ = safe;
  }
  return saved_;
}

}  // namespace CloudIngest
