#include "Core/Sending/AttemptState.h"

#include "Core/Sending/AttemptErrors.h"

namespace CloudIngest {

bool AttemptState::Cancelled() const {
  return deps.cancels != nullptr && deps.cancels->IsCancelled(record.orthancId, record.claim);
}

void AttemptState::ThrowIfStopping() const {
  if (ShouldStop()) throw Interrupted();
}

void AttemptState::Audit(const char* event, const std::function<void(AuditEvent&)>& fill) const {
  AuditEvent e;
  e.event = event;
  e.orthancStudyId = record.orthancId;
  e.studyInstanceUid = record.studyInstanceUid;
  e.pseudonymousStudyInstanceUid = pseudonymousStudyInstanceUid;
  e.orderId = record.orderId;
  e.attempt = record.attempts;
  e.user = record.requestedBy;
  if (fill) fill(e);
  deps.audit.Record(e, Now());
}

}  // namespace CloudIngest
