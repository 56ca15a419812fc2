// The requests the front door answers (IngestService): status, study queries,
// manual and bulk sends, cancel, pause and resume, preview, audit. Start-up,
// shutdown and the background threads are in CloudIngestService.cpp.
#include <boost/algorithm/string/case_conv.hpp>

#include "Core/Audit/Receipt.h"
#include "Core/CloudIngestService.h"
#include "Core/JsonText.h"
#include "Core/Sending/StudyFilter.h"
#include "Core/Time.h"

namespace CloudIngest {

namespace {

constexpr double kNodesShownFor = 86400;  // seconds: a node silent for longer leaves the status

}  // namespace

ServiceStatus CloudIngestService::Status() {
  ServiceStatus status;
  status.enabled = true;
  status.takenAt = clock_->Now();
  status.url = config_.url;
  status.autoSend = config_.autoSend;
  status.uploadMode = ToString(config_.uploadMode);
  status.concurrency = config_.concurrencyMode == ConcurrencyMode::Auto
                           ? "auto"
                           : std::to_string(config_.concurrency);
  status.roundTripSeconds = client_->Waits().roundTrip;
  status.auditLog = config_.auditLog;
  const TokenState token = tokens_->State();
  status.token.validNow = token.valid && token.expiresAt > status.takenAt;
  status.token.validUntil = status.token.validNow ? token.expiresAt : 0;
  status.token.issuedAt = token.issuedAt;
  status.token.refreshFailures = token.refreshFailures;
  status.token.lastError = token.lastError;
  status.node = config_.cluster.nodeName;
  status.leaseDuration = config_.cluster.leaseDuration;
  status.databaseRecovered = recovery_;
  status.database = queue_->Health();
  try {
    status.totals = queue_->Totals();
    status.changesCursor = queue_->GetChangesCursor();
    status.nodes = queue_->Nodes(status.takenAt - kNodesShownFor);
    status.paused = queue_->GetQueueMode() == QueueMode::Paused;  // shared by the nodes
  } catch (const DatabaseError& e) {
    // The status still answers, and says why the rest is missing.
    status.database.reachable = false;
    status.database.lastError = e.what();
    status.paused = scheduler_->Mode() == QueueMode::Paused;
  }
  status.sendWindows.configured = !windows_.AlwaysOpen();
  status.sendWindows.open = windows_.Allows(status.takenAt);
  status.sendWindows.nextOpening = windows_.NextOpening(status.takenAt);
  status.maxSendRate = config_.maxSendRate;
  status.webhooksPending = webhooks_->Pending();
  return status;
}

std::vector<StudyRecord> CloudIngestService::ListStudies(const StudyQuery& query) {
  return queue_->List(query.state, query.limit, query.offset, query.since);
}

std::optional<StudyDetails> CloudIngestService::FindStudy(const std::string& orthancId) {
  auto record = queue_->Get(orthancId);
  if (!record) return std::nullopt;
  return StudyDetails{std::move(*record), queue_->History(orthancId)};
}

std::optional<StudyRecord> CloudIngestService::Send(const EnqueueRequest& request) {
  return QueueManual(request, "");
}

std::optional<StudyRecord> CloudIngestService::QueueManual(const EnqueueRequest& request,
                                                           const std::string& detail) {
  if (!source_.StudyExists(request.orthancId)) return std::nullopt;
  EnqueueRequest manual = request;
  manual.trigger = "manual";
  manual.force = true;
  StudyRecord record = queue_->Enqueue(manual, clock_->Now());
  AuditEvent e;
  e.event = "manual_send";
  e.orthancStudyId = request.orthancId;
  e.studyInstanceUid = record.studyInstanceUid;
  e.user = request.requestedBy;
  e.detail = detail;
  audit_->Record(e, clock_->Now());
  scheduler_->Wake();
  return record;
}

CancelResult CloudIngestService::Cancel(const CancelRequest& request) {
  CancelResult result;
  auto found = queue_->Get(request.orthancId);
  if (!found) return result;
  if (!cancels_->Cancel(request.orthancId, clock_->Now())) {
    result.outcome = CancelResult::Outcome::NotCancellable;
    result.study = std::move(*found);
    return result;
  }
  result.outcome = CancelResult::Outcome::Cancelled;
  result.study = queue_->Get(request.orthancId).value_or(*found);
  AuditEvent e;
  e.event = "study_cancelled";
  e.orthancStudyId = request.orthancId;
  e.studyInstanceUid = result.study.studyInstanceUid;
  e.user = request.user;
  e.detail = request.via;
  audit_->Record(e, clock_->Now());
  return result;
}

void CloudIngestService::AddOrderMetadata(const std::string& orderId, const Json::Value& metadata,
                                          const std::string& user) {
  client_->AddMetadata(orderId, metadata);
  AuditEvent e;
  e.event = "metadata_added";
  e.orderId = orderId;
  e.user = user;
  audit_->Record(e, clock_->Now());
}

ConnectionTest CloudIngestService::TestConnection() {
  ConnectionTest test;
  test.url = config_.url;
  test.tokenUrl = config_.tokenUrl;
  test.httpsVerifyPeers = config_.httpsVerifyPeers;
  try {
    tokens_->FetchFresh();  // audited as token_issued, as every token is
    test.tokenObtained = true;
    test.validUntil = tokens_->State().expiresAt;
  } catch (const std::exception& e) {
    test.error = e.what();
  }
  return test;
}

void CloudIngestService::AuditQueue(const char* event, const std::string& user,
                                    const std::string& detail) {
  AuditEvent e;
  e.event = event;
  e.user = user;
  e.detail = detail;
  audit_->Record(e, clock_->Now());
}

unsigned CloudIngestService::Pause(const PauseRequest& request) {
  // Durable first: a crash right after the answer still finds the queue paused.
  queue_->SetQueueMode(QueueMode::Paused);
  scheduler_->SetMode(QueueMode::Paused);
  unsigned stopped = 0;
  if (request.running == RunningSends::Stop) {
    for (const StudyRecord& running : queue_->List(StudyState::Sending, 0, 0, 0)) {
      if (!cancels_->Cancel(running.orthancId, clock_->Now())) continue;  // ended meanwhile
      // Queued again as it was asked for, so it goes on resume.
      queue_->Enqueue({running.orthancId, running.trigger, running.mode, running.extraMetadata,
                       running.requestedBy, running.trigger == "manual"},
                      clock_->Now());
      queue_->AddHistory(running.orthancId,
                         {clock_->Now(), running.attempts, "paused", "stopped by a queue pause"});
      stopped++;
    }
  }
  AuditQueue("queue_paused", request.user,
             request.running == RunningSends::Stop
                 ? std::to_string(stopped) + " running send(s) stopped and queued again"
                 : "running sends finish");
  log_.Warning("CloudIngest: queue paused" +
               (request.user.empty() ? std::string() : " by " + request.user));
  return stopped;
}

void CloudIngestService::Resume(const std::string& user) {
  queue_->SetQueueMode(QueueMode::Running);
  scheduler_->SetMode(QueueMode::Running);
  AuditQueue("queue_resumed", user, "");
  log_.Warning("CloudIngest: queue resumed" + (user.empty() ? std::string() : " by " + user));
}

std::vector<StudyRecord> CloudIngestService::BulkSend(const BulkSendQuery& query) {
  const std::string modality = boost::algorithm::to_upper_copy(query.modality);
  std::vector<StudyRecord> queued;
  // 0: as many as the store lists at once.
  for (const StudyRecord& candidate : queue_->List(query.state, 0, 0, query.since)) {
    if (queued.size() >= query.limit) break;
    if (!modality.empty()) {
      try {
        if (!StudyMatches({modality}, {}, source_.GetStudy(candidate.orthancId))) continue;
      } catch (const StudyNotFound&) {
        continue;
      }
    }
    EnqueueRequest request;
    request.orthancId = candidate.orthancId;
    request.requestedBy = query.requestedBy;
    if (auto record = QueueManual(request, "bulk resend")) queued.push_back(std::move(*record));
  }
  return queued;
}

std::optional<StudyPreview> CloudIngestService::Preview(const std::string& orthancId) {
  StudyPreview preview;
  try {
    preview = PreviewSend(config_, source_, orthancId, queue_->Get(orthancId), client_->Waits(),
                          deidentifier_);
  } catch (const StudyNotFound&) {
    return std::nullopt;
  }
  preview.window = InsideSendWindow(clock_->Now());
  if (!preview.window.open) preview.blockedBy.push_back("SendWindows: " + preview.window.reason);
  preview.paused = scheduler_->Mode() == QueueMode::Paused;
  if (preview.paused) preview.blockedBy.push_back("the queue is paused");
  if (!config_.autoSend) preview.blockedBy.push_back("AutoSend is false");
  return preview;
}

void CloudIngestService::RecordAccessDenied(const std::string& user, const std::string& method,
                                            const std::string& route) {
  AuditEvent e;
  e.event = "access_denied";
  e.user = user;
  e.method = method;
  e.route = route;
  audit_->Record(e, clock_->Now());
}

AuditVerification CloudIngestService::VerifyAudit() {
  return audit_->Verify();
}

std::optional<Json::Value> CloudIngestService::Receipt(const std::string& orthancId) {
  const auto text = queue_->GetReceipt(orthancId);
  if (!text) return std::nullopt;
  static const Json::CharReaderBuilder builder;
  Json::Value receipt;
  std::string errors;
  if (!ParseJsonText(builder, *text, receipt, errors)) {
    throw std::runtime_error("the stored receipt of study " + orthancId + " is unreadable");
  }
  return SignReceipt(std::move(receipt), config_.auditKey);
}

}  // namespace CloudIngest
