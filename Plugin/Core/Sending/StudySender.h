#pragma once
// One attempt at sending one claimed study: order, a presigned URL and a PUT
// per instance (Concurrency at a time, back to back so the service groups
// them), then add-metadata. Records progress, the outcome and every step in
// the queue and the audit log.
#include <string>

#include "Core/Audit/AuditLog.h"
#include "Core/Clock.h"
#include "Core/Cloud/IngestClient.h"
#include "Core/Configuration/Configuration.h"
#include "Core/Logger.h"
#include "Core/Orthanc/Deidentifier.h"
#include "Core/Orthanc/StudySource.h"
#include "Core/Sending/MemoryBudget.h"
#include "Core/Sending/OrderBuilder.h"
#include "Core/Sending/RetryPolicy.h"
#include "Core/Sending/SendObserver.h"
#include "Core/Sending/StopSignal.h"
#include "Core/Store/CancelRegistry.h"
#include "Core/Store/StudyStore.h"
#include "Core/ThreadStarter.h"

namespace CloudIngest {

enum class SendOutcome {
  Sent,
  Unchanged,
  Skipped,
  Retry,
  Failed,
  Cancelled,
  Interrupted,
  Deferred  // instances still arriving (on any node): queued again for later
};
const char* ToString(SendOutcome outcome);

struct SenderDependencies {
  const Configuration& config;
  IStudySource& source;
  IngestClient& client;
  StudyStore& queue;
  AuditLog& audit;
  RetryPolicy& retry;
  const IClock& clock;
  ILogger& log;
  StopSignal& stop;
  const CancelRegistry* cancels;  // may be null: nothing is ever cancelled
  MemoryBudget& memory;           // instances held in memory, over every study worker
  ThreadStarter& threads;         // upload threads
  // Hears of the attempt's progress; may be null.
  SendObserver* observer = nullptr;
  IDeidentifier* deidentifier = nullptr;  // null: studies to de-identify fail instead
};

class StudySender {
 public:
  explicit StudySender(SenderDependencies deps) : d_(std::move(deps)) {}
  // `claimed` is in state Sending. Never throws: every failure ends in the
  // queue, and every failed attempt counts toward MaxStudyAttempts.
  SendOutcome Run(const StudyRecord& claimed);

 private:
  class Attempt;
  SenderDependencies d_;
};

// A fingerprint of the set of instances: equal means "unchanged study".
std::string StudySignature(const StudyInfo& study);

}  // namespace CloudIngest
