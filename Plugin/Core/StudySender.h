#pragma once
// One attempt at sending one claimed study: order, a presigned URL and a PUT
// per instance (Concurrency at a time, back to back so the service groups
// them), then add-metadata. Records progress, the outcome and every step in
// the queue and the audit log.
#include <functional>
#include <string>

#include "AuditLog.h"
#include "Clock.h"
#include "Configuration.h"
#include "IngestClient.h"
#include "Logger.h"
#include "OrderBuilder.h"
#include "RetryPolicy.h"
#include "StopSignal.h"
#include "StudySource.h"
#include "UploadQueue.h"

namespace CloudIngest {

enum class SendOutcome { Sent, Unchanged, Skipped, Retry, Failed, Cancelled, Interrupted };
const char* ToString(SendOutcome outcome);

struct SenderDependencies {
  const Configuration& config;
  IStudySource& source;
  IngestClient& client;
  UploadQueue& queue;
  AuditLog& audit;
  RetryPolicy& retry;
  const IClock& clock;
  ILogger& log;
  StopSignal& stop;
  std::function<bool(const std::string& orthancId)> isCancelled;
};

class StudySender {
 public:
  explicit StudySender(SenderDependencies deps) : d_(std::move(deps)) {}
  // `claimed` is in state Sending. Never throws: every failure ends in the queue.
  SendOutcome Run(const StudyRecord& claimed);

 private:
  class Attempt;
  SenderDependencies d_;
};

// A fingerprint of the set of instances: equal means "unchanged study".
std::string StudySignature(const StudyInfo& study);

}  // namespace CloudIngest
