#include "Core/Orthanc/CatchUpScanner.h"

#include <set>

namespace CloudIngest {

unsigned CatchUpScanner::Scan(unsigned maxChanges) {
  int64_t cursor = queue_.GetChangesCursor();
  if (cursor < 0) {
    queue_.SetChangesCursor(feed_.LastSeq());
    return 0;
  }
  if (const int64_t last = feed_.LastSeq(); last < cursor) {
    // Orthanc's log of changes was cleared or its index replaced: scanning
    // the new log from the start could resend a whole archive, so start
    // over as on the first run.
    log_.Warning("CloudIngest: Orthanc's /changes end at " + std::to_string(last) +
                 ", before the saved cursor " + std::to_string(cursor) +
                 " (log cleared or index replaced); following it from there");
    queue_.SetChangesCursor(last);
    return 0;
  }
  std::set<std::string> studies;
  unsigned seen = 0;
  for (;;) {
    const ChangesPage page = feed_.GetChanges(cursor, 1000);
    for (const auto& change : page.changes) {
      if (change.resourceType == "Study" &&
          (change.changeType == "NewStudy" || change.changeType == "NewChildInstance" ||
           change.changeType == "StableStudy")) {
        studies.insert(change.id);
      } else if (change.resourceType == "Study" && change.changeType == "Deleted") {
        studies.erase(change.id);
      }
      cursor = std::max(cursor, change.seq);
    }
    // Past a filtered feed's last match: an empty page's end is the log's.
    if (page.changes.empty()) cursor = std::max(cursor, page.last);
    seen += static_cast<unsigned>(page.changes.size());
    if (page.done || page.changes.empty()) break;
    if (seen >= maxChanges) {
      log_.Warning("CloudIngest: more than " + std::to_string(maxChanges) +
                   " changes since the last start; the rest is scanned at the next start");
      break;
    }
  }
  unsigned queued = 0;
  if (!autoSend_) studies.clear();
  for (const auto& id : studies) {
    const auto existing = queue_.Get(id);
    if (existing &&
        (existing->state == StudyState::Queued || existing->state == StudyState::Sending ||
         existing->state == StudyState::Cancelled)) {
      continue;  // already on its way, or stopped on purpose
    }
    EnqueueRequest request;
    request.orthancId = id;
    request.trigger = "catch-up";
    queue_.Enqueue(request, clock_.Now());
    queued++;
  }
  // The cursor moves only after the studies are durably queued.
  queue_.SetChangesCursor(cursor);
  if (queued > 0) {
    log_.Warning("CloudIngest: " + std::to_string(queued) +
                 " stud(ies) changed while the plugin was not running; queued to catch up");
  }
  return queued;
}

}  // namespace CloudIngest
