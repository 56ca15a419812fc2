#pragma once
// An IngestService with canned answers that records what the routes asked,
// so the REST tests see exactly what reached the service.
#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "Core/Cloud/IngestError.h"
#include "Core/IngestService.h"

namespace CloudIngest::Testing {

// The tracked record of a study, or nullopt (the test's view of FindStudy).
inline std::optional<StudyRecord> Tracked(IngestService& service, const std::string& orthancId) {
  auto study = service.FindStudy(orthancId);
  if (!study) return std::nullopt;
  return study->record;
}

class FakeIngestService : public IngestService {
 public:
  // What the service answers.
  ServiceStatus status;
  std::vector<StudyRecord> listed;
  std::map<std::string, StudyDetails> studies;  // tracked, by Orthanc id
  std::vector<std::string> inOrthanc;           // what Send finds
  std::optional<IngestError> metadataRefusal;   // thrown by AddOrderMetadata
  ConnectionTest connection;
  AuditVerification verification;
  std::map<std::string, Json::Value> receipts;  // by Orthanc id
  std::string listError;  // not empty: ListStudies throws std::runtime_error with it

  // What reached it.
  std::vector<StudyQuery> queries;
  std::vector<EnqueueRequest> sends;
  std::vector<std::string> cancels;
  std::vector<CancelRequest> cancelRequests;
  struct Metadata {
    std::string orderId;
    Json::Value body;
    std::string user;
  };
  std::vector<Metadata> metadata;
  unsigned connectionTests = 0;
  unsigned statusReads = 0;
  std::vector<PauseRequest> pauses;
  std::vector<std::string> resumes;  // the users
  std::vector<BulkSendQuery> bulkSends;
  std::vector<std::string> previews;
  unsigned stoppedByPause = 0;                    // what Pause answers
  std::map<std::string, StudyPreview> previewed;  // what Preview finds, by Orthanc id
  struct Denial {
    std::string user, method, route;
  };
  std::vector<Denial> denials;
  unsigned verifications = 0;

  // Anything at all, apart from reading the status.
  size_t Calls() const {
    return queries.size() + sends.size() + cancels.size() + metadata.size() + connectionTests +
           finds_ + pauses.size() + resumes.size() + bulkSends.size() + previews.size() +
           verifications;
  }

  ServiceStatus Status() override {
    statusReads++;
    return status;
  }
  std::vector<StudyRecord> ListStudies(const StudyQuery& query) override {
    queries.push_back(query);
    if (!listError.empty()) throw std::runtime_error(listError);
    return listed;
  }
  std::optional<StudyDetails> FindStudy(const std::string& orthancId) override {
    finds_++;
    const auto it = studies.find(orthancId);
    if (it == studies.end()) return std::nullopt;
    return it->second;
  }
  std::optional<StudyRecord> Send(const EnqueueRequest& request) override {
    sends.push_back(request);
    if (std::find(inOrthanc.begin(), inOrthanc.end(), request.orthancId) == inOrthanc.end()) {
      return std::nullopt;
    }
    StudyRecord record;
    record.orthancId = request.orthancId;
    record.trigger = "manual";
    record.mode = request.mode;
    record.extraMetadata = request.extraMetadata;
    record.requestedBy = request.requestedBy;
    record.respectWindows = request.respectWindows;
    return record;
  }
  CancelResult Cancel(const CancelRequest& request) override {
    cancels.push_back(request.orthancId);
    cancelRequests.push_back(request);
    CancelResult result;
    const auto it = studies.find(request.orthancId);
    if (it == studies.end()) return result;
    StudyRecord& record = it->second.record;
    if (record.state != StudyState::Queued && record.state != StudyState::Sending) {
      result.outcome = CancelResult::Outcome::NotCancellable;
    } else {
      result.outcome = CancelResult::Outcome::Cancelled;
      record.state = StudyState::Cancelled;
    }
    result.study = record;
    return result;
  }
  void AddOrderMetadata(const std::string& orderId, const Json::Value& body,
                        const std::string& user) override {
    metadata.push_back({orderId, body, user});
    if (metadataRefusal) throw *metadataRefusal;
  }
  ConnectionTest TestConnection() override {
    connectionTests++;
    return connection;
  }
  unsigned Pause(const PauseRequest& request) override {
    pauses.push_back(request);
    status.paused = true;
    return stoppedByPause;
  }
  void Resume(const std::string& user) override {
    resumes.push_back(user);
    status.paused = false;
  }
  // Answers the listed records, as if each had been queued.
  std::vector<StudyRecord> BulkSend(const BulkSendQuery& query) override {
    bulkSends.push_back(query);
    std::vector<StudyRecord> queued = listed;
    if (queued.size() > query.limit) queued.resize(query.limit);
    for (auto& record : queued) record.state = StudyState::Queued;
    return queued;
  }
  std::optional<StudyPreview> Preview(const std::string& orthancId) override {
    previews.push_back(orthancId);
    const auto it = previewed.find(orthancId);
    if (it == previewed.end()) return std::nullopt;
    return it->second;
  }
  void RecordAccessDenied(const std::string& user, const std::string& method,
                          const std::string& route) override {
    denials.push_back({user, method, route});
  }
  AuditVerification VerifyAudit() override {
    verifications++;
    return verification;
  }
  std::optional<Json::Value> Receipt(const std::string& orthancId) override {
    finds_++;
    const auto it = receipts.find(orthancId);
    if (it == receipts.end()) return std::nullopt;
    return it->second;
  }

 private:
  size_t finds_ = 0;
};

}  // namespace CloudIngest::Testing
