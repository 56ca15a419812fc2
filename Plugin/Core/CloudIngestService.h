#pragma once
// Everything the plugin runs, built from a validated Configuration and the
// two SDK seams (study source, logger). Plugin.cpp owns one of these; REST
// handlers and the metrics see it as an IngestService, never its parts.
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "Core/Audit/AuditLog.h"
#include "Core/Audit/SyslogForwarder.h"
#include "Core/Clock.h"
#include "Core/Cloud/CurlHttpClient.h"
#include "Core/Cloud/IngestClient.h"
#include "Core/Cloud/TokenProvider.h"
#include "Core/Configuration/Configuration.h"
#include "Core/Configuration/SendWindows.h"
#include "Core/IngestService.h"
#include "Core/Logger.h"
#include "Core/Notify/Webhooks.h"
#include "Core/Orthanc/ChangeFeed.h"
#include "Core/Orthanc/ChangeTracker.h"
#include "Core/Orthanc/Deidentifier.h"
#include "Core/Orthanc/StudySource.h"
#include "Core/Sending/MemoryBudget.h"
#include "Core/Sending/RetryPolicy.h"
#include "Core/Sending/Scheduler.h"
#include "Core/Sending/SendObserver.h"
#include "Core/Sending/StopSignal.h"
#include "Core/Sending/StudySender.h"
#include "Core/Store/CancelRegistry.h"
#include "Core/Store/StudyStore.h"
#include "Core/ThreadStarter.h"

namespace CloudIngest {

class CloudIngestService : public IngestService {
 public:
  // Opens the database and the audit log (throws on failure: Orthanc must
  // not start with a plugin that cannot keep its promise). A database SQLite
  // finds corrupt is the exception: the images matter more than the queue,
  // so it is moved aside, an empty one replaces it, and every study still in
  // Orthanc's /changes is queued at Start() (see DatabaseRecovered()).
  // `changes` (may be null) is scanned at Start() for studies missed while
  // down, then followed while running so that the next scan starts late.
  // `deidentifier` (may be null: then a study to de-identify fails) reads
  // instances through Orthanc's anonymization when Deidentify is on.
  // `nameThread` (may be null) names each thread the service starts.
  CloudIngestService(Configuration config, IStudySource& source, ILogger& log,
                     IChangeFeed* changes = nullptr, std::unique_ptr<IHttpClient> http = nullptr,
                     std::unique_ptr<IClock> clock = nullptr, IDeidentifier* deidentifier = nullptr,
                     ThreadStarter::Namer nameThread = nullptr);
  ~CloudIngestService() override;

  // Called from Orthanc's OnChange callback: a durable insert, nothing else.
  // When the insert fails (rethrown), the /changes tracker inserts it later.
  void OnStableStudy(const std::string& orthancStudyId);
  // OrthancStarted: recover interrupted sends, catch up on missed changes (in
  // a thread: no REST calls inside Orthanc's callback), start the workers and
  // the renewal of this node's claims. A database that does not answer yet
  // (PostgreSQL down) delays the recovery and the catch-up, not the start.
  void Start();
  void Stop();  // OrthancStopped

  ServiceStatus Status() override;
  std::vector<StudyRecord> ListStudies(const StudyQuery& query) override;
  std::optional<StudyDetails> FindStudy(const std::string& orthancId) override;
  std::optional<StudyRecord> Send(const EnqueueRequest& request) override;
  CancelResult Cancel(const CancelRequest& request) override;
  void AddOrderMetadata(const std::string& orderId, const Json::Value& metadata,
                        const std::string& user) override;
  ConnectionTest TestConnection() override;
  unsigned Pause(const PauseRequest& request) override;
  void Resume(const std::string& user) override;
  std::vector<StudyRecord> BulkSend(const BulkSendQuery& query) override;
  std::optional<StudyPreview> Preview(const std::string& orthancId) override;

  // Hears of every attempt (Orthanc's jobs list); set before Start(), may be null.
  void SetSendObserver(SendObserver* observer);
  // Whether SendWindows let automatic sends start at `now`: always, until
  // SendWindows are configurable (the preview already reports it).
  SendWindowVerdict InsideSendWindow(double now) const;
  void RecordAccessDenied(const std::string& user, const std::string& method,
                          const std::string& route) override;
  AuditVerification VerifyAudit() override;
  std::optional<Json::Value> Receipt(const std::string& orthancId) override;

  // Audit records waiting for the syslog collector (0 without AuditSyslog).
  uint64_t SyslogPending() { return syslog_ ? syslog_->Pending() : 0; }

  const Configuration& Config() const { return config_; }
  // The running attempts' cancels (the tests watch an entry come and go).
  const CancelRegistry& Cancels() const { return *cancels_; }
  // Set when a corrupt database was moved aside at start-up.
  const std::optional<DatabaseRecovery>& DatabaseRecovered() const { return recovery_; }
  // When automatic sends may start (e.g. for a preview of a send).
  const SendWindows& Windows() const { return windows_; }

 private:
  void FollowChanges();             // the catch-up thread
  void KeepClaims(bool recovered);  // the lease thread: recovery if still due, then renewals
  bool RecoverInterrupted();
  void FollowQueueMode();   // every second, from KeepClaims
  void InsertUnrecorded();  // the change callback's failed inserts, once the database answers
  void OpenQueue();
  // One claimed study through the sender, with the observer told.
  SendOutcome RunClaimed(const StudyRecord& claimed);
  std::optional<StudyRecord> QueueManual(const EnqueueRequest& request, const std::string& detail);
  void AuditQueue(const char* event, const std::string& user, const std::string& detail);
  // A claimed study: postponed to the next send window if it must wait for
  // one, else sent; then the webhooks hear how it ended.
  void RunStudy(const StudyRecord& study);
  QueueProbe ProbeQueue();
  void OpenAudit();

  Configuration config_;
  IDeidentifier* deidentifier_ = nullptr;  // may be null
  IStudySource& source_;
  ILogger& log_;
  IChangeFeed* changes_;
  std::unique_ptr<IClock> clock_;
  std::unique_ptr<IHttpClient> http_;
  std::unique_ptr<StudyStore> queue_;
  std::optional<DatabaseRecovery> recovery_;
  std::unique_ptr<ThreadStarter> threads_;
  std::unique_ptr<SyslogForwarder> syslog_;  // before audit_, which forwards to it
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<TokenProvider> tokens_;
  std::unique_ptr<IngestClient> client_;
  std::unique_ptr<RetryPolicy> retry_;
  std::unique_ptr<MemoryBudget> memory_;
  std::unique_ptr<CancelRegistry> cancels_;  // shared by the scheduler and the sender
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<StudySender> sender_;
  SendWindows windows_;
  std::unique_ptr<WebhookNotifier> webhooks_;
  UnrecordedStudies unrecorded_;
  SendObserver* observer_ = nullptr;
  std::thread catchUp_;     // the start-up scan, then ChangeTracker polls
  std::thread leases_;      // KeepClaims
  StopSignal catchUpStop_;  // both threads
};

}  // namespace CloudIngest
