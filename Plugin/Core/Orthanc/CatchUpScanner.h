#pragma once
// Queues the studies that changed since the saved /changes cursor. The
// sender then compares each with what was sent, so unchanged studies cost a
// lookup, not a resend.
#include "Core/Clock.h"
#include "Core/Logger.h"
#include "Core/Orthanc/ChangeFeed.h"
#include "Core/Store/StudyStore.h"

namespace CloudIngest {

class CatchUpScanner {
 public:
  // `autoSend` false (AutoSend off): studies are never queued on their own,
  // so the scan only moves the cursor.
  CatchUpScanner(IChangeFeed& feed, StudyStore& queue, const IClock& clock, ILogger& log,
                 bool autoSend = true)
      : feed_(feed), queue_(queue), clock_(clock), log_(log), autoSend_(autoSend) {}
  // Returns the number of studies queued. On the very first run only the
  // cursor is set: installing the plugin does not resend the archive.
  unsigned Scan(unsigned maxChanges = 200000);

 private:
  IChangeFeed& feed_;
  StudyStore& queue_;
  const IClock& clock_;
  ILogger& log_;
  const bool autoSend_;
};

}  // namespace CloudIngest
