#pragma once
// The state of one attempt at sending a study, shared by its upload threads:
// the services it uses, its copy of the study record, its progress.
#include <functional>

#include "Core/Audit/Receipt.h"
#include "Core/Sending/ProgressRecorder.h"
#include "Core/Sending/StudySender.h"

namespace CloudIngest {

struct AttemptState {
  AttemptState(SenderDependencies& dependencies, StudyRecord claimed)
      : deps(dependencies),
        source(&dependencies.source),
        record(std::move(claimed)),
        progress(record, dependencies.queue, dependencies.clock, dependencies.observer),
        startedAt(dependencies.clock.Now()) {}
  AttemptState(const AttemptState&) = delete;
  AttemptState& operator=(const AttemptState&) = delete;

  double Now() const { return deps.clock.Now(); }
  bool Cancelled() const;
  // Orthanc is stopping or the study was cancelled.
  bool ShouldStop() const { return deps.stop.Stopped() || Cancelled(); }
  // Throws Interrupted when ShouldStop().
  void ThrowIfStopping() const;

  // One audit record about this study; `fill` adds the event's own fields.
  void Audit(const char* event, const std::function<void(AuditEvent&)>& fill = {}) const;

  // The StudyInstanceUID the cloud sees: the pseudonym when de-identified.
  const std::string& SentStudyInstanceUid() const {
    return pseudonymousStudyInstanceUid.empty() ? record.studyInstanceUid
                                                : pseudonymousStudyInstanceUid;
  }

  SenderDependencies& deps;
  IStudySource* source;  // where instance bytes come from: deps.source, or its de-identified view
  std::string pseudonymousStudyInstanceUid;  // empty unless de-identified
  StudyRecord record;
  ProgressRecorder progress;  // writes `record`'s counters
  const double startedAt;
  UploadMode mode = UploadMode::Instances;  // as chosen for this attempt
  unsigned connections = 1;                 // uploads at a time, as chosen for this attempt
  ReceiptCollector receipt;                 // every file the store accepted
};

}  // namespace CloudIngest
