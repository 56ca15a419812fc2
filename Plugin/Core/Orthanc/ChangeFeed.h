#pragma once
// Orthanc's log of changes (/changes), read at start-up to find studies that
// changed while the plugin was not listening (e.g. Orthanc was killed before
// a study became stable, so its StableStudy event never comes).
#include <cstdint>
#include <string>
#include <vector>

namespace CloudIngest {

struct Change {
  int64_t seq = 0;
  std::string changeType;    // "NewStudy", "StableStudy", "NewChildInstance", ...
  std::string resourceType;  // "Study", "Series", "Instance", "Patient"
  std::string id;
};

struct ChangesPage {
  std::vector<Change> changes;
  // As Orthanc's "Last": the last change's seq, or the log's end when the
  // page holds none (filtered or not; in the same transaction as the page).
  int64_t last = 0;
  bool done = true;
};

// The changes the catch-up scan and the tracker act on that Orthanc writes to
// its log (NewChildInstance and Deleted reach plugins as events only): a feed
// may leave every other change out of its pages. StableStudy alone would not
// do: a study whose StableStudy never came (Orthanc killed first) is found by
// its NewStudy.
inline constexpr const char* kLoggedStudyChanges[] = {"NewStudy", "StableStudy"};

class IChangeFeed {
 public:
  virtual ~IChangeFeed() = default;
  // The changes after `since`, oldest first. A page's seqs may have gaps (a
  // filtered feed): a reader's cursor is the last seq it saw, or the `last`
  // of a page without a change (then the log's end, read with the page).
  virtual ChangesPage GetChanges(int64_t since, unsigned limit) = 0;
  virtual int64_t LastSeq() = 0;
};

}  // namespace CloudIngest
