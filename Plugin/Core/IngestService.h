#pragma once
// The plugin's front door: what the REST routes and the metrics need, and
// nothing more. They reach the plugin through this interface only, never
// its store, cloud client or audit log (the unit tests fake it).
#include <json/value.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "Core/Audit/AuditChain.h"  // AuditVerification
#include "Core/Sending/SendPreview.h"
#include "Core/Store/StudyRecord.h"
#include "Core/Store/StudyStore.h"  // QueueTotals, EnqueueRequest, DatabaseRecovery

namespace CloudIngest {

// The OAuth2 token, judged once at the snapshot's time.
struct TokenStatus {
  bool validNow = false;  // a token is held and has not expired
  double validUntil = 0;  // its expiry, 0 unless validNow
  double issuedAt = 0;
  unsigned refreshFailures = 0;
  std::string lastError;  // never the token or the secret
};

// One reading of the plugin, for GET /status and the Prometheus metrics alike.
struct ServiceStatus {
  std::string version = CLOUD_INGEST_VERSION;
  bool enabled = false;  // the rest is left empty when false
  double takenAt = 0;    // the service's clock when read
  std::string url;
  bool autoSend = false;
  std::string uploadMode;
  std::string concurrency;                 // a number, or "auto"
  std::optional<double> roundTripSeconds;  // to the API, measured; none before an exchange
  std::string auditLog;
  TokenStatus token;
  QueueTotals totals;  // studies by state, all-time counts
  // Orthanc's /changes are accounted for up to here (-1 before the first scan).
  int64_t changesCursor = -1;
  // Set when a corrupt database was moved aside at start-up.
  std::optional<DatabaseRecovery> databaseRecovered;
  std::string node;  // this node's name
  double leaseDuration = 0;
  StoreHealth database;
  std::vector<NodeStatus> nodes;  // of the cluster (one with SQLite), by name
  bool paused = false;            // POST /queue/pause: no new send starts
  struct {
    bool configured = false;  // SendWindows set
    bool open = true;         // an automatic send may start now
    double nextOpening = 0;   // when one may next start (takenAt while open)
  } sendWindows;
  uint64_t maxSendRate = 0;    // bytes per second, 0: no cap
  size_t webhooksPending = 0;  // posts waiting in the webhook queue
};

struct StudyQuery {
  std::optional<StudyState> state;  // any when empty
  unsigned limit = 100;
  unsigned offset = 0;
  double since = 0;  // updated at or after (Unix seconds), 0 for any time
};

struct StudyDetails {
  StudyRecord record;
  std::vector<HistoryEntry> history;  // oldest first
};

// A cancel, audited as study_cancelled when it cancels.
struct CancelRequest {
  std::string orthancId;
  std::string user;  // who asked, where known
  std::string via;   // how, e.g. "POST /cloud-ingest/studies/{id}/cancel"
};

struct CancelResult {
  enum class Outcome { Cancelled, NotTracked, NotCancellable };
  Outcome outcome = Outcome::NotTracked;
  StudyRecord study;  // after the cancel, or as found when it cannot be cancelled
  explicit operator bool() const { return outcome == Outcome::Cancelled; }
};

// What POST /test-connection reports: the settings tried, then the outcome.
struct ConnectionTest {
  std::string url;
  std::string tokenUrl;
  bool httpsVerifyPeers = true;
  bool tokenObtained = false;
  double validUntil = 0;  // of the token obtained
  std::string error;      // why no token was obtained
};

// POST /queue/pause. What becomes of the sends running at that moment.
enum class RunningSends { Finish, Stop };
struct PauseRequest {
  RunningSends running = RunningSends::Finish;
  std::string user;
};

// POST /studies/send: the tracked studies to send again (newest first).
struct BulkSendQuery {
  std::optional<StudyState> state;  // any when empty
  double since = 0;                 // updated at or after (Unix seconds), 0 for any time
  std::string modality;             // one of the study's modalities; empty for any
  unsigned limit = 100;
  std::string requestedBy;
};

class IngestService {
 public:
  virtual ~IngestService() = default;

  virtual ServiceStatus Status() = 0;
  // Newest first.
  virtual std::vector<StudyRecord> ListStudies(const StudyQuery& query) = 0;
  // nullopt: not tracked by the plugin.
  virtual std::optional<StudyDetails> FindStudy(const std::string& orthancId) = 0;
  // Manual (re)send, queued even if unchanged, and audited. nullopt: Orthanc
  // has no such study (nothing is queued).
  virtual std::optional<StudyRecord> Send(const EnqueueRequest& request) = 0;
  // Only queued or sending studies can be cancelled; a cancel is audited.
  virtual CancelResult Cancel(const CancelRequest& request) = 0;
  // Adds `metadata` to an order in the cloud, and audits it for `user`.
  // Throws IngestError when the ingestion service refuses.
  virtual void AddOrderMetadata(const std::string& orderId, const Json::Value& metadata,
                                const std::string& user) = 0;
  // Always asks the token endpoint for a fresh token (a cached one proves
  // nothing about the endpoint now); never throws.
  virtual ConnectionTest TestConnection() = 0;

  // Stops starting sends, durably; returns how many running sends were
  // stopped (RunningSends::Stop: they are queued again, to go on resume).
  virtual unsigned Pause(const PauseRequest& request) = 0;
  virtual void Resume(const std::string& user) = 0;
  // Each match is queued and audited as a manual send; returns them as queued.
  virtual std::vector<StudyRecord> BulkSend(const BulkSendQuery& query) = 0;
  // What a send would do now, sending nothing. nullopt: not in Orthanc.
  virtual std::optional<StudyPreview> Preview(const std::string& orthancId) = 0;
  // An access_denied audit record: `user` was refused `method` `route`.
  virtual void RecordAccessDenied(const std::string& user, const std::string& method,
                                  const std::string& route) = 0;
  // Checks the audit file against the chain's head (never throws for a bad
  // file: the answer says what is wrong).
  virtual AuditVerification VerifyAudit() = 0;
  // The signed delivery receipt of the study's last successful send;
  // nullopt when it was never sent.
  virtual std::optional<Json::Value> Receipt(const std::string& orthancId) = 0;
};

}  // namespace CloudIngest
