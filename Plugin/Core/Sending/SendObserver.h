#pragma once
// Who else hears about sends (Orthanc's jobs list): the start of an attempt,
// its progress as recorded in the store, and how it ended. Called on the
// study workers' threads; an observer must return at once and not throw.
#include <json/value.h>

#include <string>

#include "Core/Store/StudyRecord.h"

namespace CloudIngest {

enum class SendOutcome;

struct SendEnd {
  StudyRecord study;  // as the attempt left it (counts, order id, last error)
  SendOutcome outcome;
  std::string error;  // why it failed, will be retried or stopped; empty otherwise
};

class SendObserver {
 public:
  virtual ~SendObserver() = default;
  virtual void SendStarted(const StudyRecord& claimed) = 0;
  // At most every ProgressRecorder::kFlushInterval, with the attempt's counts.
  virtual void SendProgress(const StudyRecord& study) = 0;
  // Every attempt ends here, also one that found the study unchanged or
  // outside Filters (outcome Unchanged or Skipped, no error).
  virtual void SendEnded(const SendEnd& end) = 0;
};

// What Orthanc's jobs list shows of an ended send: orthanc_study_id,
// order_id, instances_sent, instances_total, bytes_sent, attempt, trigger,
// outcome, and the error when it did not end sent. Every Orthanc user may
// read /jobs, whatever their role: no DICOM identifier or patient data.
Json::Value SendJobContent(const SendEnd& end);
// `text` (an error) without the study's StudyInstanceUID, PatientID and
// PatientName nor anything else that reads as a DICOM UID.
std::string WithoutStudyIdentifiers(const std::string& text, const StudyRecord& study);
inline bool SendSucceeded(const SendEnd& end) {
  return end.error.empty();
}

}  // namespace CloudIngest
